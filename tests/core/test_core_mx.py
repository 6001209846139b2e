"""OCP MX v1.0 block quantization against a scalar reference written from the specification.

Reference (OCP Microscaling Formats v1.0, section 6.3, per block of 32 elements):
``X = max |V_i|``; ``shared_exp = floor(log2 X) - emax_elem`` clamped to E8M0's [-127, 127];
``P_i = round_to_element(V_i / 2**shared_exp)`` to nearest, ties to even, saturating at the element's
largest magnitude.  Conventions documented in hwsim.mx and checked here too: an all-zero block gets the
smallest scale 2**-127 (code 0); a block holding NaN or Inf gets the NaN scale code 0xFF; MXINT8
elements are int8 with an implicit 2**-6 and saturate symmetrically at +-127.
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import numpy as np
import pytest
from core_reference import float_code_value, round_half_even

from hwsim import get_format
from hwsim.quantize import dequantize, quantize

MX = {
    # name: (element field spec (e, m, bias, inf_nan) or None for int8, emax_elem)
    "mxfp4": ((2, 1, 1, "none"), 2),
    "mxfp6_e2m3": ((2, 3, 1, "none"), 2),
    "mxfp6_e3m2": ((3, 2, 3, "none"), 4),
    "mxfp8_e4m3": ((4, 3, 7, "fn"), 8),
    "mxfp8_e5m2": ((5, 2, 15, "ieee"), 15),
    "mxint8": (None, 0),
}


class ElementRef:
    """Round-to-nearest-even, saturating encoder of one element format, from its bit fields."""

    def __init__(self, fields):
        self.fields = fields
        if fields is None:
            return
        e, m, bias, inf_nan = fields
        self.sign_bit = 1 << (e + m)
        mags = []
        for code in range(self.sign_bit):
            v = float_code_value(code, e, m, bias, inf_nan)
            if isinstance(v, Fraction):
                mags.append((v, code))
        mags.sort()
        self.levels = [v for v, _ in mags]
        self.codes = [c for _, c in mags]

    def encode(self, q: Fraction) -> int:
        if self.fields is None:  # MXINT8: 1.6 fixed point, symmetric saturation
            v = max(-127, min(127, round_half_even(q * 64)))
            return v & 0xFF
        mag = abs(q)
        if mag >= self.levels[-1]:
            code = self.codes[-1]
        else:
            i = bisect.bisect_right(self.levels, mag)  # levels[i-1] <= mag < levels[i]
            lo, hi = self.levels[i - 1], self.levels[i]
            if mag - lo < hi - mag:
                code = self.codes[i - 1]
            elif mag - lo > hi - mag:
                code = self.codes[i]
            else:
                code = self.codes[i] if self.codes[i] % 2 == 0 else self.codes[i - 1]
        return code | self.sign_bit if q < 0 else code


def mx_reference_block(block: list[float], emax: int, elem: ElementRef) -> tuple[int, list[int] | None]:
    """(scale code, element codes or None for a NaN block) for one block."""
    if any(not math.isfinite(v) for v in block):
        return 0xFF, None
    amax = max(abs(Fraction(v)) for v in block)
    if amax == 0:
        shared = -127
    else:
        e = amax.numerator.bit_length() - amax.denominator.bit_length()
        if Fraction(2) ** e > amax:  # make e = floor(log2 amax) exactly
            e -= 1
        assert Fraction(2) ** e <= amax < Fraction(2) ** (e + 1)
        shared = max(-127, min(127, e - emax))
    scale = Fraction(2) ** shared
    return shared + 127, [elem.encode(Fraction(v) / scale) for v in block]


def _rows(name: str, rng: np.random.Generator, length: int) -> np.ndarray:
    """Rows covering the special cases; every row is split into blocks of 32 along the last axis."""
    fields, emax = MX[name]
    spec = get_format(name)
    rows = []
    for _ in range(12):
        rows.append(rng.standard_normal(length) * 2.0 ** rng.integers(-20, 20))
    rows.append(np.zeros(length))  # all-zero blocks
    r = rng.standard_normal(length)
    r[3] = np.nan  # NaN in the first block only
    r[40] = -np.inf  # -Inf in the second block
    rows.append(r)
    # amax exactly a power of two, and just below one (the MX clipping quirk)
    for k in (-3, 0, 5):
        r = rng.uniform(-1, 1, length) * 2.0**k
        r[::32] = 2.0 ** (k + 1)
        rows.append(r)
        r = r.copy()
        r[::32] = np.nextafter(2.0 ** (k + 1), 0)
        rows.append(r)
    # exact ties after scaling: element midpoints times the block scale
    elem_vals = spec.element_values(np.arange(spec.element.num_codes, dtype=np.uint8))
    finite = np.unique(np.abs(elem_vals[np.isfinite(elem_vals)]))
    mids = (finite[:-1] + finite[1:]) / 2
    for k in (-4, 7):
        r = rng.choice(mids, length) * np.where(rng.random(length) < 0.5, -1, 1) * 2.0**k
        r[::32] = finite[-1] * 2.0**k  # pins amax so the shared exponent is k + floor(log2 max) - emax
        rows.append(r)
    # float32 extremes: subnormal amax (scale clamps at 2**-127) and near float32 max
    rows.append((rng.standard_normal(length) * 2.0**-140).astype(np.float32).astype(np.float64))
    rows.append(rng.uniform(-1, 1, length) * float(np.finfo(np.float32).max))
    # integer-ish values for MXINT8 ties: k/128 steps
    rows.append(rng.integers(-300, 300, length) / 128.0)
    return np.array(rows)


@pytest.mark.parametrize("name", list(MX))
def test_mx_quantize_matches_spec_reference(name):
    fields, emax = MX[name]
    spec = get_format(name)
    assert spec.kind == "mx" and spec.block_size == 32 and spec.emax == emax
    elem = ElementRef(fields)
    rng = np.random.default_rng(sum(map(ord, name)))
    length = 32 * 3 + 7  # partial last block
    x = _rows(name, rng, length)
    t = spec.quantize(x, axis=-1)
    assert t.codes.shape == x.shape and t.scale_codes.shape == (x.shape[0], 4)
    for i, row in enumerate(x):
        for b in range(4):
            block = [float(v) for v in row[32 * b: 32 * (b + 1)]]
            scale_code, codes = mx_reference_block(block, emax, elem)
            assert int(t.scale_codes[i, b]) == scale_code, (i, b)
            if codes is not None:
                got = t.codes[i, 32 * b: 32 * (b + 1)].tolist()
                assert got == codes, (i, b, [(v, g, c) for v, g, c in zip(block, got, codes, strict=True)
                                             if g != c][:5])
    # dequantize: element value times the scale, NaN for NaN blocks
    deq = t.dequantize()
    assert np.array_equal(deq, dequantize(t), equal_nan=True)
    scale = np.repeat(t.scale_codes.astype(np.float64), 32, axis=1)[:, :length]
    expected = np.where(scale == 255, np.nan, spec.element_values(t.codes) * np.exp2(scale - 127))
    assert np.array_equal(deq, expected, equal_nan=True)


@pytest.mark.parametrize("name", list(MX))
def test_mx_axis_and_quantize_entry_point(name):
    spec = get_format(name)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((70, 5)) * 3
    t0 = spec.quantize(x, axis=0)
    t1 = spec.quantize(x.T.copy(), axis=-1)
    assert t0.codes.shape == (70, 5) and t0.scale_codes.shape == (3, 5)
    assert np.array_equal(t0.codes, t1.codes.T) and np.array_equal(t0.scale_codes, t1.scale_codes.T)
    assert np.array_equal(t0.dequantize(), t1.dequantize().T)
    t2 = quantize(x, name, axis=0)
    assert np.array_equal(t2.codes, t0.codes) and np.array_equal(t2.scale_codes, t0.scale_codes)


def test_mx_known_values():
    fp4 = get_format("mxfp4")
    x = np.zeros(32)
    x[0], x[1], x[2] = 8.0, 7.99, -0.6  # amax 8 = 2**3 -> shared exp 1; 7.99 -> 2**2 binade
    t = fp4.quantize(x)
    assert int(t.scale_codes[0]) == 128
    assert t.dequantize()[:3].tolist() == [8.0, 8.0, -1.0]  # 7.99/2 -> 4.0; -0.3 -> -0.5 -> -1.0
    y = x.copy()
    y[0] = 7.99  # amax 7.99 -> shared exp 0; 7.99 saturates to 6
    t = fp4.quantize(y)
    assert int(t.scale_codes[0]) == 127 and t.dequantize()[:3].tolist() == [6.0, 6.0, -0.5]
    zero = fp4.quantize(np.zeros(5))
    assert zero.scale_codes.tolist() == [0] and zero.codes.tolist() == [0] * 5
    assert zero.dequantize().tolist() == [0.0] * 5
    i8 = get_format("mxint8")
    t = i8.quantize(np.array([1.0, -1.0, 0.5 + 1 / 128, 1 / 128, -3 / 128]))
    assert int(t.scale_codes[0]) == 127  # amax 1 -> floor(log2) 0 - emax 0
    assert t.codes.tolist() == [64, 0xC0, 32, 0, 0xFE]  # ties to even: 32.5 -> 32, 0.5 -> 0, -1.5 -> -2


def test_mx_errors():
    with pytest.raises(ValueError, match=r"mxfp4: x must have at least one dimension, not a scalar 1\.0"):
        get_format("mxfp4").quantize(1.0)


# ---------------------------------------------------------------------- MX GEMM
def _mx_element_value(name: str, code: int) -> Fraction | float:
    fields, _ = MX[name]
    if fields is None:
        return Fraction(code - 256 if code >= 128 else code, 64)
    v = float_code_value(code, *fields)
    return v if isinstance(v, Fraction) else float(v)


def _gemm_mx_reference(a_name, a, sa, b_name, b, sb):
    """Per block: exact dot product times 2**(sa + sb - 254); blocks summed in float64 in block order."""
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n))
    for i in range(m):
        for j in range(n):
            total = 0.0
            for blk in range(-(-k // 32)):
                if sa[i, blk] == 255 or sb[blk, j] == 255:
                    total = math.nan
                    continue
                dot, specials = Fraction(0), set()
                for kk in range(32 * blk, min(32 * blk + 32, k)):
                    x = _mx_element_value(a_name, int(a[i, kk]))
                    y = _mx_element_value(b_name, int(b[kk, j]))
                    if isinstance(x, Fraction) and isinstance(y, Fraction):
                        dot += x * y
                    else:
                        specials.add(float(x) * float(y))  # IEEE: NaN, or +-Inf (0 * Inf -> NaN)
                if specials:
                    bad = any(math.isnan(v) for v in specials) or len(specials) > 1
                    total += math.nan if bad else specials.pop()
                    continue
                total += float(dot * Fraction(2) ** (int(sa[i, blk]) + int(sb[blk, j]) - 254))
            out[i, j] = total
    return out


@pytest.mark.parametrize("a_name,b_name", [("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp4", "mxfp4"),
                                           ("mxint8", "mxint8"), ("mxfp8_e5m2", "mxfp6_e2m3"),
                                           ("mxint8", "mxfp8_e4m3")])
def test_gemm_mx_matches_block_reference(a_name, b_name):
    from hwsim.gemm import gemm_mx

    rng = np.random.default_rng(len(a_name + b_name))
    m, k, n = 3, 32 * 2 + 9, 4
    x = rng.standard_normal((m, k)) * np.exp2(rng.integers(-30, 30, (m, 1)))
    w = rng.standard_normal((k, n)) * np.exp2(rng.integers(-30, 30, (1, n)))
    x[1, 40] = np.nan  # second block of row 1 gets the NaN scale
    ta = get_format(a_name).quantize(x, axis=-1)
    tb = get_format(b_name).quantize(w, axis=0)
    got = gemm_mx(ta.codes, ta.scale_codes, a_name, tb.codes, tb.scale_codes, b_name)
    expected = _gemm_mx_reference(a_name, ta.codes, ta.scale_codes, b_name, tb.codes, tb.scale_codes)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()
    # consistency with dequantize + exact products (every block here is exactly representable)
    deq = ta.dequantize()[[0, 2]] @ tb.dequantize()
    np.testing.assert_allclose(got[[0, 2]], deq, rtol=1e-12, atol=0)


@pytest.mark.parametrize("a_name,code,expected", [("mxfp8_e4m3", 0x7F, math.nan), ("mxfp8_e5m2", 0x7C, math.inf),
                                                  ("mxfp8_e5m2", 0x7E, math.nan)])
def test_gemm_mx_element_specials(a_name, code, expected):
    """Regression for core_bugs.md B8 (fixed in 8c3c144)."""
    from hwsim.gemm import gemm_mx

    a = np.zeros((1, 32), np.uint8)
    a[0, 0] = code
    b = np.full((32, 1), 0x38, np.uint8)  # mxfp8_e4m3 element 1.0
    scales = np.full((1, 1), 127)
    got = gemm_mx(a, scales, a_name, b, scales, "mxfp8_e4m3")
    t = get_format(a_name)
    assert np.isnan(t.element_values(a)[0, 0]) or np.isinf(t.element_values(a)[0, 0])
    assert np.array_equal(got, [[expected]], equal_nan=True)


@pytest.mark.parametrize("a_name,b_name", [("mxfp8_e4m3", "mxfp8_e5m2"), ("mxfp8_e5m2", "mxfp8_e5m2")])
def test_gemm_mx_random_element_specials(a_name, b_name):
    from hwsim.gemm import gemm_mx

    rng = np.random.default_rng(99)
    m, k, n = 4, 70, 5
    ea, eb = get_format(a_name).element, get_format(b_name).element
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(0, 256, (k, n)).astype(np.uint8)
    a[ea.is_special(a)] = 1
    b[eb.is_special(b)] = 1
    a[1, 5] = ea.nan_code  # row 1: NaN in block 0
    a[2, 40] = 0x7C if a_name == "mxfp8_e5m2" else 0x7F  # row 2: +Inf (e5m2) / NaN (e4m3) in block 1
    b[40, 3] = 0xFC if b_name == "mxfp8_e5m2" else 0xFF  # column 3: -Inf in block 1 (+Inf * -Inf etc.)
    b[65, 4] = 0xFC if b_name == "mxfp8_e5m2" else 0xFF
    sa = rng.integers(100, 150, (m, 3))
    sb = rng.integers(100, 150, (3, n))
    sa[0, 2] = 255
    got = gemm_mx(a, sa, a_name, b, sb, b_name)
    expected = _gemm_mx_reference(a_name, a, sa, b_name, b, sb)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isfinite(got).any() and np.isnan(got).any() and np.isinf(got).any()


def test_gemm_mx_errors():
    from hwsim.gemm import gemm_mx

    a = np.zeros((2, 40), np.uint8)
    b = np.zeros((40, 3), np.uint8)
    with pytest.raises(ValueError, match=r"a_scales must have shape \(2, 2\), not \(2, 1\)"):
        gemm_mx(a, np.zeros((2, 1)), "mxfp4", b, np.zeros((2, 3)), "mxfp4")
    with pytest.raises(ValueError, match=r"b_scales must have shape \(2, 3\), not \(3, 2\)"):
        gemm_mx(a, np.zeros((2, 2)), "mxfp4", b, np.zeros((3, 2)), "mxfp4")
    with pytest.raises(TypeError, match=r"a_format must be an MX block format, not 'int8'"):
        gemm_mx(a, np.zeros((2, 2)), "int8", b, np.zeros((2, 3)), "mxfp4")
    with pytest.raises(ValueError, match=r"a_codes for float4_e2m1fn must lie in 0\.\.15, not 16"):
        gemm_mx(a + 16, np.zeros((2, 2)), "mxfp4", b, np.zeros((2, 3)), "mxfp4")
