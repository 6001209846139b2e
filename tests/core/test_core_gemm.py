"""Exact GEMM against a plain scalar reference (Python ints / Fractions, a triple loop).

Operand values for the reference come from outside hwsim: ml_dtypes for float formats, two's complement
arithmetic for integers, the dINT level definition for dINT.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from core_reference import HYP, dint_levels
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import gemm, get_format
from hwsim.gemm import AccumulatorSpec, accumulator_bits, gemm_ex, gemm_fixed, mac_product_fixed

NAN = "nan"


# ---------------------------------------------------------------------- reference operand values
def ref_value(name: str, code: int):
    """Value of one code as a Fraction, or a float for NaN/Inf (independent of hwsim)."""
    if name.startswith(("int", "uint")):
        bits = int(name.lstrip("uint"))
        signed = name.startswith("int")
        return Fraction(code - (1 << bits) if signed and code >= 1 << (bits - 1) else code)
    if name.startswith("dint"):
        return dint_levels(int(name[4:]), Fraction(1, 2))[code]
    v = float(np.array([code], dtype=np.uint8).view(getattr(ml_dtypes, name))[0])
    return Fraction(v) if math.isfinite(v) else v


def ref_matrix(name: str, codes: np.ndarray, zero_point=None) -> list[list]:
    out = []
    for i, row in enumerate(codes.tolist()):
        vals = [ref_value(name, c) for c in row]
        if zero_point is not None:
            zp = np.broadcast_to(np.asarray(zero_point), codes.shape)
            vals = [v - int(zp[i, j]) for j, v in enumerate(vals)]
        out.append(vals)
    return out


def ref_dot(terms_a: list, terms_b: list):
    """Exact sum of products, with IEEE NaN/Inf semantics; Fraction when finite."""
    total = Fraction(0)
    infs = set()
    for x, y in zip(terms_a, terms_b, strict=True):
        if isinstance(x, Fraction) and isinstance(y, Fraction):
            total += x * y
            continue
        p = float(x) * float(y)  # at least one operand is NaN/Inf: float gives IEEE's answer
        if math.isnan(p):
            return math.nan
        infs.add(p)
    if infs:
        return math.nan if len(infs) > 1 else infs.pop()
    return total


def ref_gemm(a_name, a_codes, b_name, b_codes, zpa=None, zpb=None) -> list[list]:
    a = ref_matrix(a_name, a_codes, zpa)
    b = ref_matrix(b_name, b_codes.T.copy(), None if zpb is None else np.asarray(zpb).T)
    return [[ref_dot(row, col) for col in b] for row in a]


def as_float(v) -> float:
    return float(v)  # Fraction.__float__ is correctly rounded (int / int true division)


def assert_matches(got: np.ndarray, ref: list[list]):
    expected = np.array([[as_float(v) for v in row] for row in ref])
    assert got.shape == expected.shape
    assert np.array_equal(got, expected, equal_nan=True), np.argwhere(
        ~((got == expected) | (np.isnan(got) & np.isnan(expected))))[:5]


def random_codes(rng, name, shape, finite=True):
    spec = get_format(name)
    codes = rng.integers(0, spec.num_codes, size=shape).astype(spec.code_dtype)
    if finite and spec.kind == "float":
        special = spec.is_special(codes)
        codes[special] = 0
    return codes


# ---------------------------------------------------------------------- integer pairs
@pytest.mark.parametrize("a_name,b_name", [("int8", "int8"), ("int4", "int8"), ("uint8", "int8"),
                                           ("int8", "uint8"), ("uint4", "int4"), ("int16", "int16"),
                                           ("int2", "int8")])
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 17, 5), (7, 64, 4)])
def test_integer_gemm(a_name, b_name, shape):
    m, k, n = shape
    rng = np.random.default_rng(m * 100 + k)
    a = random_codes(rng, a_name, (m, k))
    b = random_codes(rng, b_name, (k, n))
    got = gemm(a, a_name, b, b_name)
    assert got.dtype == np.int64
    ref = ref_gemm(a_name, a, b_name, b)
    assert got.tolist() == [[int(v) for v in row] for row in ref]


@pytest.mark.parametrize("granularity", ["tensor", "row_col"])
def test_uint8_int8_zero_points(granularity):
    rng = np.random.default_rng(5)
    m, k, n = 6, 40, 7
    a = random_codes(rng, "uint8", (m, k))
    b = random_codes(rng, "int8", (k, n))
    b_u = random_codes(rng, "uint8", (k, n))
    if granularity == "tensor":
        zpa, zpb, zpb_u = np.int64(128), np.int64(-3), np.int64(255)
    else:
        zpa = rng.integers(0, 256, (m, 1))
        zpb = rng.integers(-128, 128, (1, n))
        zpb_u = rng.integers(0, 256, (1, n))
    got = gemm(a, "uint8", b, "int8", a_zero_point=zpa, b_zero_point=zpb)
    ref = ref_gemm("uint8", a, "int8", b, zpa, zpb)
    assert got.tolist() == [[int(v) for v in row] for row in ref]
    got = gemm(a, "uint8", b_u, "uint8", a_zero_point=zpa, b_zero_point=zpb_u)
    ref = ref_gemm("uint8", a, "uint8", b_u, zpa, zpb_u)
    assert got.tolist() == [[int(v) for v in row] for row in ref]
    # gemm_fixed agrees
    fixed, lsb = gemm_fixed(a, "uint8", b, "int8", a_zero_point=zpa, b_zero_point=zpb)
    assert lsb == 0 and fixed.tolist() == gemm(a, "uint8", b, "int8", a_zero_point=zpa,
                                              b_zero_point=zpb).tolist()


def test_adversarial_integer_extremes():
    for k in (1, 255, 256, 257, 1023, 1024, 1025, 4097):
        a = np.full((2, k), 0x80, np.uint8)  # int8 -128
        b = np.full((k, 3), 0x80, np.uint8)
        assert gemm(a, "int8", b, "int8").tolist() == [[k * 16384] * 3] * 2
        a[:, 0] = 1  # make the sum odd (not representable in float32 once above 2**24)
        b[0, :] = 1
        expected = (k - 1) * 16384 + 1
        assert gemm(a, "int8", b, "int8").tolist() == [[expected] * 3] * 2
        a = np.full((2, k), 0x7F, np.uint8)
        b = np.full((k, 3), 0x80, np.uint8)
        assert gemm(a, "int8", b, "int8").tolist() == [[-k * 127 * 128] * 3] * 2
        u = np.full((2, k), 0xFF, np.uint8)
        assert gemm(u, "uint8", u.T.copy(), "uint8", a_zero_point=0, b_zero_point=0).tolist() == \
            [[k * 255 * 255] * 2] * 2
        assert gemm(u, "uint8", u.T.copy(), "uint8", a_zero_point=255, b_zero_point=-255).tolist() == \
            [[0] * 2] * 2


def code_units(name: str, unit_exp: int) -> list[int]:
    """Value of every code as an exact integer number of 2**unit_exp (reference side; NaN/Inf -> None)."""
    if name.startswith(("int", "uint")):  # two's complement directly (int16 has 65536 codes)
        bits = int(name.lstrip("uint"))
        assert unit_exp <= 0
        half = 1 << (bits - 1)
        return [(c - (1 << bits) if name.startswith("int") and c >= half else c) << -unit_exp
                for c in range(1 << bits)]
    out = []
    for c in range(get_format(name).num_codes):
        v = ref_value(name, c)
        if isinstance(v, Fraction):
            q = v / Fraction(2) ** unit_exp
            assert q.denominator == 1
            out.append(int(q))
        else:
            out.append(None)
    return out


def long_dot_reference(a_name, a, b_name, b, unit_exp=-40):
    """Exact sums as Fractions for long K: per-code integer tables, then Python-int dot products."""
    ta, tb = code_units(a_name, unit_exp // 2), code_units(b_name, unit_exp - unit_exp // 2)
    unit = Fraction(2) ** unit_exp
    out = []
    for row in a.tolist():
        ra = [ta[c] for c in row]
        out.append([sum(x * tb[c] for x, c in zip(ra, col, strict=True)) * unit for col in b.T.tolist()])
    return out


@pytest.mark.parametrize("a_name,b_name,k", [("int8", "int8", 70000), ("int16", "int16", 4096),
                                             ("int16", "int16", 70000), ("dint4", "int8", 70000),
                                             ("uint8", "int8", 65537)])
def test_long_k_integer(a_name, b_name, k):
    rng = np.random.default_rng(k)
    a = random_codes(rng, a_name, (2, k))
    b = random_codes(rng, b_name, (k, 2))
    # push towards the extremes so sums are large
    a[:, ::3] = get_format(a_name).encode([get_format(a_name).min])[0]
    b[::3, :] = get_format(b_name).encode([get_format(b_name).min])[0]
    ref = long_dot_reference(a_name, a, b_name, b)
    got = gemm(a, a_name, b, b_name)
    assert got.tolist() == [[as_float(v) if get_format(a_name).kind == "dint" else int(v) for v in row]
                            for row in ref]


# ---------------------------------------------------------------------- float / dINT / codebook pairs
PAIRS = [("dint4", "int8"), ("int8", "dint4"), ("float4_e2m1fn", "float4_e2m1fn"),
         ("float8_e4m3fn", "float8_e4m3fn"), ("float8_e5m2", "float8_e5m2"),
         ("float8_e4m3fn", "float8_e5m2"), ("float8_e5m2", "float8_e4m3fn"),
         ("float6_e2m3fn", "float6_e3m2fn"), ("int8", "float8_e4m3fn"), ("dint4", "float4_e2m1fn")]


@pytest.mark.parametrize("a_name,b_name", PAIRS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 23, 5), (3, 96, 3)])
def test_float_gemm_exact_or_correctly_rounded(a_name, b_name, shape):
    m, k, n = shape
    rng = np.random.default_rng(sum(map(ord, a_name + b_name)) + k)
    a = random_codes(rng, a_name, (m, k))
    b = random_codes(rng, b_name, (k, n))
    got = gemm(a, a_name, b, b_name)
    assert got.dtype == np.float64
    ref = ref_gemm(a_name, a, b_name, b)
    assert_matches(got, ref)
    fixed, lsb = gemm_fixed(a, a_name, b, b_name)
    assert lsb == get_format(a_name).lsb_exponent + get_format(b_name).lsb_exponent
    scale = Fraction(2) ** -lsb
    assert [[int(v) for v in row] for row in fixed.tolist()] == [[v * scale for v in row] for row in ref]


def test_nf4_codebook_gemm():
    rng = np.random.default_rng(44)
    a = random_codes(rng, "nf4", (3, 50))
    b = random_codes(rng, "int8", (50, 4))
    nf4 = get_format("nf4").values()
    va = [[Fraction(float(nf4[c])) for c in row] for row in a.tolist()]
    vb = [[ref_value("int8", c) for c in col] for col in b.T.tolist()]
    ref = [[sum(x * y for x, y in zip(r, c, strict=True)) for c in vb] for r in va]
    assert_matches(gemm(a, "nf4", b, "int8"), ref)


def test_e5m2_wide_sums_correctly_rounded_and_fixed_exact():
    """Sums spanning more than 53 bits: float64 output correctly rounded (ties to even)."""
    enc = get_format("float8_e5m2").encode
    big, tiny = 2.0**15, 2.0**-16
    rows = [
        [big, 2.0**-8, 0.0],          # 2**30 + 2**-23: exact tie below 2**30's half ulp -> even (2**30)
        [big, 2.0**-8, tiny],         # + 2**-32: just above the tie -> rounds up
        [big, 3 * 2.0**-8, 0.0],      # 2**30 + 3 * 2**-23: tie -> even is up (2**30 + 2**-21)
        [-big, 2.0**-8, -tiny],       # negative: -(2**30) + 2**-23 - 2**-32
        [57344.0, 57344.0, tiny],     # largest products + smallest
    ]
    cols = [[big, 2.0**-15, tiny], [tiny, tiny, tiny], [-57344.0, 2.0**-15, 57344.0]]
    a = enc(np.array(rows))
    b = enc(np.array(cols).T)
    ref = ref_gemm("float8_e5m2", a, "float8_e5m2", b)
    got = gemm(a, "float8_e5m2", b, "float8_e5m2")
    assert_matches(got, ref)
    assert got[0, 0] == 2.0**30 and got[1, 0] == 2.0**30 + 2.0**-22 and got[2, 0] == 2.0**30 + 2.0**-21
    fixed, lsb = gemm_fixed(a, "float8_e5m2", b, "float8_e5m2")
    assert lsb == -32
    assert [[int(v) for v in row] for row in fixed.tolist()] == [[int(v * 2**32) for v in row] for row in ref]
    # at least one exact result needs more than 53 significant bits
    assert any(int(v * 2**32).bit_length() - (int(v * 2**32) & -int(v * 2**32)).bit_length() + 1 > 53
               for row in ref for v in row if v)


@pytest.mark.parametrize("a_name,b_name,k", [("float8_e4m3fn", "float8_e4m3fn", 4096),
                                             ("float8_e4m3fn", "float8_e4m3fn", 131073),
                                             ("float8_e5m2", "float8_e5m2", 4096),
                                             ("float8_e5m2", "float8_e5m2", 70000),
                                             ("float4_e2m1fn", "float4_e2m1fn", 70000)])
def test_long_k_float(a_name, b_name, k):
    rng = np.random.default_rng(k + len(a_name))
    a = random_codes(rng, a_name, (1, k))
    b = random_codes(rng, b_name, (k, 2))
    top = get_format(a_name).encode([get_format(a_name).max])[0]
    a[0, ::2] = top
    b[::2, 0] = get_format(b_name).encode([get_format(b_name).max])[0]
    b[::2, 1] = get_format(b_name).encode([get_format(b_name).min])[0]
    lsb = get_format(a_name).lsb_exponent + get_format(b_name).lsb_exponent
    scale = Fraction(2) ** -lsb
    ref = long_dot_reference(a_name, a, b_name, b)[0]
    got = gemm(a, a_name, b, b_name)
    assert got[0].tolist() == [as_float(v) for v in ref]
    fixed, _ = gemm_fixed(a, a_name, b, b_name)
    assert [int(v) for v in fixed[0].tolist()] == [int(v * scale) for v in ref]


def test_nan_inf_propagation():
    e5 = get_format("float8_e5m2")
    e4 = get_format("float8_e4m3fn")
    inf, ninf, nan5 = 0x7C, 0xFC, 0x7E
    one5, zero5, neg5 = int(e5.encode([1.0])[0]), 0, int(e5.encode([-2.0])[0])
    a = np.array([[inf, one5, one5], [inf, ninf, zero5], [one5, one5, one5], [nan5, one5, one5],
                  [one5, one5, one5], [zero5, one5, one5]], np.uint8)
    b = np.array([[one5, inf, zero5, neg5], [one5, one5, one5, ninf], [one5, one5, one5, one5]], np.uint8)
    got = gemm(a, "float8_e5m2", b, "float8_e5m2")
    assert_matches(got, ref_gemm("float8_e5m2", a, "float8_e5m2", b))
    assert np.isnan(got).any() and np.isinf(got).any() and np.isfinite(got).any()
    # e4m3fn NaN codes (0x7F, 0xFF) in both operands, mixed with e5m2 Inf
    a4 = random_codes(np.random.default_rng(1), "float8_e4m3fn", (4, 6))
    a4[1, 2] = 0x7F
    a4[3, 0] = 0xFF
    b5 = random_codes(np.random.default_rng(2), "float8_e5m2", (6, 3))
    b5[4, 1] = 0xFC
    b5[0, 2] = 0x7C
    got = gemm(a4, e4, b5, e5)
    assert_matches(got, ref_gemm("float8_e4m3fn", a4, "float8_e5m2", b5))
    # gemm_fixed: NaN/Inf operands contribute 0
    fixed, lsb = gemm_fixed(a4, e4, b5, e5)
    va = np.where(e4.is_special(a4), 0, e4.to_fixed(a4))
    vb = np.where(e5.is_special(b5), 0, e5.to_fixed(b5))
    assert fixed.tolist() == [[sum(int(x) * int(y) for x, y in zip(r, c, strict=True)) for c in vb.T] for r in va]


# ---------------------------------------------------------------------- bounded accumulators
def ref_sequential(a_vals, b_vals, bits, overflow, unit=Fraction(1)):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out, events = [], 0
    for row in a_vals:
        line = []
        for col in b_vals:
            acc = 0
            for x, y in zip(row, col, strict=True):
                p = x * y / unit
                assert p.denominator == 1
                exact = acc + int(p)
                if exact < lo or exact > hi:
                    events += 1
                    exact = ((exact - lo) % (1 << bits)) + lo if overflow == "wrap" else min(max(exact, lo), hi)
                acc = exact
            line.append(acc)
        out.append(line)
    return out, events


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("bits", [12, 16, 20, 32])
def test_accumulator_overflow_sequential(overflow, bits):
    rng = np.random.default_rng(bits)
    m, k, n = 5, 300, 6
    a = random_codes(rng, "int8", (m, k))
    b = random_codes(rng, "int8", (k, n))
    b[:, 0] = 0x80  # column of -128 and rows of extremes: guaranteed overflow at small widths
    a[0, :] = 0x80
    a[1, :] = 0x7F
    zpb = np.zeros((1, n), np.int64)
    zpb[0, 3] = 5
    res = gemm_ex(a, "int8", b, "int8", b_zero_point=zpb, accumulator=AccumulatorSpec(bits=bits, overflow=overflow))
    va = ref_matrix("int8", a)
    vb = ref_matrix("int8", b.T.copy(), zpb.T)
    ref, events = ref_sequential(va, vb, bits, overflow)
    assert res.values.tolist() == ref
    assert res.overflow_events == events
    if bits <= 20:
        assert events > 0
    if bits == 32:
        assert events == 0
    assert np.array_equal(gemm(a, "int8", b, "int8", b_zero_point=zpb,
                               accumulator=AccumulatorSpec(bits=bits, overflow=overflow)), res.values)


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_accumulator_on_fixed_point_float_products(overflow):
    """The register holds F_a*F_b units (2**lsb); float outputs are the register value times 2**lsb."""
    rng = np.random.default_rng(77)
    a = random_codes(rng, "float8_e4m3fn", (3, 64))
    b = random_codes(rng, "float8_e4m3fn", (64, 4))
    a[0, :] = 0x7E  # +448: the first row overflows a 38-bit register against large columns
    b[:, 0] = 0x7E
    b[::2, 1] = 0xFE
    bits = 38
    res = gemm_ex(a, "float8_e4m3fn", b, "float8_e4m3fn", accumulator=AccumulatorSpec(bits=bits, overflow=overflow))
    va = ref_matrix("float8_e4m3fn", a)
    vb = ref_matrix("float8_e4m3fn", b.T.copy())
    unit = Fraction(2) ** res.lsb_exponent
    ref, events = ref_sequential(va, vb, bits, overflow, unit)
    assert res.lsb_exponent == -18
    assert res.values.tolist() == [[float(v * unit) for v in row] for row in ref]
    assert res.overflow_events == events > 0


def test_accumulator_spec_errors():
    with pytest.raises(ValueError, match=r"accumulator bits must be an integer in 2\.\.64, not 1"):
        AccumulatorSpec(bits=1)
    with pytest.raises(ValueError, match=r"accumulator overflow must be 'wrap' or 'saturate', not 'clip'"):
        AccumulatorSpec(bits=32, overflow="clip")


# ---------------------------------------------------------------------- float32 sequential mode
@pytest.mark.parametrize("a_name,b_name", [("float8_e4m3fn", "float8_e4m3fn"), ("float8_e5m2", "float8_e5m2"),
                                           ("int8", "int8"), ("float4_e2m1fn", "dint4")])
def test_float32_sequential_accumulate(a_name, b_name):
    rng = np.random.default_rng(9)
    a = random_codes(rng, a_name, (4, 200), finite=False)
    b = random_codes(rng, b_name, (200, 3), finite=False)
    va = get_format(a_name).decode(a).astype(np.float32)  # exact: <= 8-bit values fit float32
    vb = get_format(b_name).decode(b).astype(np.float32)
    expected = np.zeros((4, 3), np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(4):
            for j in range(3):
                acc = np.float32(0)
                for k in range(200):
                    acc = np.float32(acc + np.float32(va[i, k] * vb[k, j]))
                expected[i, j] = acc
    got = gemm(a, a_name, b, b_name, accumulate="float32")
    assert got.dtype == np.float64
    assert np.array_equal(got, expected.astype(np.float64), equal_nan=True)


# ---------------------------------------------------------------------- products and widths
@pytest.mark.parametrize("a_name,b_name", [("int8", "int8"), ("uint8", "int4"), ("dint4", "int8"),
                                           ("float8_e4m3fn", "float8_e5m2"), ("float4_e2m1fn", "float4_e2m1fn")])
def test_mac_product_fixed(a_name, b_name):
    a_spec, b_spec = get_format(a_name), get_format(b_name)
    a = np.arange(a_spec.num_codes, dtype=a_spec.code_dtype)[:, None]
    b = np.arange(b_spec.num_codes, dtype=b_spec.code_dtype)[None, :]
    prods, lsb = mac_product_fixed(a, a_name, b, b_name)
    assert lsb == a_spec.lsb_exponent + b_spec.lsb_exponent
    assert prods.shape == (a_spec.num_codes, b_spec.num_codes) and prods.dtype == np.int64
    unit = Fraction(2) ** lsb
    for i in range(a_spec.num_codes):
        x = ref_value(a_name, i)
        for j in range(0, b_spec.num_codes, 3):
            y = ref_value(b_name, j)
            expected = x * y / unit if isinstance(x, Fraction) and isinstance(y, Fraction) else 0
            assert prods[i, j] == expected


def _worst_sums(a_name, b_name, k):
    fa = get_format(a_name).to_fixed(np.arange(get_format(a_name).num_codes))
    fb = get_format(b_name).to_fixed(np.arange(get_format(b_name).num_codes))
    products = [int(x) * int(y) for x in (fa.min(), fa.max()) for y in (fb.min(), fb.max())]
    return k * min(products), k * max(products)


@pytest.mark.parametrize("a_name,b_name", [("float8_e4m3fn", "float8_e4m3fn"), ("float8_e5m2", "float8_e5m2"),
                                           ("float4_e2m1fn", "float4_e2m1fn"), ("dint4", "float8_e4m3fn")])
@pytest.mark.parametrize("k", [1, 2, 3, 768, 1024, 70000])
def test_accumulator_bits_suffices_symmetric_formats(a_name, b_name, k):
    n = accumulator_bits(a_name, b_name, k)
    lo, hi = _worst_sums(a_name, b_name, k)
    assert -(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1
    if k & (k - 1) == 0:  # power of two: no slack from ceil(log2 k), the width is the minimum
        assert lo < -(1 << (n - 2)) or hi > (1 << (n - 2)) - 1


@pytest.mark.parametrize("a_name,b_name,k", [("int8", "int8", 1), ("int8", "int8", 2), ("int4", "int8", 1024),
                                             ("uint8", "int8", 256), ("int16", "int8", 4)])
def test_accumulator_bits_suffices_integer_formats(a_name, b_name, k):
    """Regression for core_bugs.md B2 (fixed in 8739f4e); the width is also the minimum here."""
    n = accumulator_bits(a_name, b_name, k)
    lo, hi = _worst_sums(a_name, b_name, k)
    assert -(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1
    assert lo < -(1 << (n - 2)) or hi > (1 << (n - 2)) - 1
    a = np.full((1, k), get_format(a_name).encode([get_format(a_name).min])[0])
    b = np.full((k, 1), get_format(b_name).encode([get_format(b_name).min])[0])
    assert gemm_ex(a, a_name, b, b_name, accumulator=AccumulatorSpec(bits=n)).overflow_events == 0
    assert gemm_ex(a, a_name, b, b_name, accumulator=AccumulatorSpec(bits=n - 1)).overflow_events > 0 or \
        a_name.startswith("uint")


def test_accumulator_bits_integer_formats_non_power_of_two_k():
    for a_name, b_name, k in [("int8", "int8", 3), ("int8", "int8", 768), ("int4", "int8", 1000)]:
        n = accumulator_bits(a_name, b_name, k)
        lo, hi = _worst_sums(a_name, b_name, k)
        assert -(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1
    with pytest.raises(ValueError, match=r"k must be a positive number of products, not 0"):
        accumulator_bits("int8", "int8", 0)


# ---------------------------------------------------------------------- errors
def test_gemm_errors():
    a = np.zeros((2, 3), np.uint8)
    b = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match=r"b_codes must have K = 3 rows to match a_codes, not 4"):
        gemm(a, "int8", np.zeros((4, 4), np.uint8), "int8")
    with pytest.raises(ValueError, match=r"a_codes must be a 2-D M x K array, not shape \(3,\)"):
        gemm(np.zeros(3, np.uint8), "int8", b, "int8")
    with pytest.raises(ValueError, match=r"b_codes must be a 2-D K x N array, not shape \(3, 4, 1\)"):
        gemm(a, "int8", np.zeros((3, 4, 1), np.uint8), "int8")
    with pytest.raises(ValueError, match=r"a_codes for int4 must lie in 0\.\.15, not 16"):
        gemm(np.full((2, 3), 16, np.uint8), "int4", b, "int8")
    with pytest.raises(ValueError, match=r"b_codes for float4_e2m1fn must lie in 0\.\.15, not 200"):
        gemm(a, "int8", np.full((3, 4), 200, np.uint8), "float4_e2m1fn")
    with pytest.raises(TypeError, match=r"a_codes for int8 must be an integer array of raw codes, not dtype 'float64'"):
        gemm(a.astype(float), "int8", b, "int8")
    with pytest.raises(ValueError, match=r"unknown format name.*not 'int99'"):
        gemm(a, "int99", b, "int8")
    with pytest.raises(TypeError, match=r"a_format is an MX block format.*not 'mxfp8_e4m3'"):
        gemm(a, "mxfp8_e4m3", b, "int8")
    with pytest.raises(TypeError, match=r"b_codes zero point applies to integer formats only, not 'float8_e4m3fn'"):
        gemm(a, "int8", b, "float8_e4m3fn", b_zero_point=3)
    with pytest.raises(TypeError, match=r"a_zero_point must be an integer or integer array, not dtype 'float64'"):
        gemm(a, "uint8", b, "int8", a_zero_point=1.5)
    with pytest.raises(ValueError, match=r"b_zero_point must broadcast to \(1, 4\), not shape \(3,\)"):
        gemm(a, "uint8", b, "int8", b_zero_point=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"accumulate must be 'exact' or 'float32', not 'fp16'"):
        gemm(a, "int8", b, "int8", accumulate="fp16")


# ---------------------------------------------------------------------- the float-BLAS bound and limbs
@pytest.mark.parametrize("ba,bb,k", [(8, 8, 256), (8, 8, 257), (12, 12, 1), (12, 13, 1), (20, 20, 8192),
                                     (20, 21, 8192), (26, 27, 1), (30, 30, 4), (31, 31, 2), (40, 40, 1000),
                                     (33, 33, 20000), (45, 2, 3000), (1, 1, 70000)])
def test_exact_fixed_matmul_bound_boundaries(ba, bb, k):
    """Operand magnitudes right at 2**ba - 1 / -(2**ba) etc. around the float32 (24), float64 (53) and int64
    (62) boundaries of ba + bb + ceil(log2 k); compared with Python-int dot products."""
    from hwsim.gemm import exact_fixed_matmul

    rng = np.random.default_rng(ba * 1000 + bb * 10 + k)
    m, n = 2, 3
    fa = rng.integers(-(1 << (ba - 1)), 1 << (ba - 1), size=(m, k), dtype=np.int64)
    fb = rng.integers(-(1 << (bb - 1)), 1 << (bb - 1), size=(k, n), dtype=np.int64)
    fa[0, ::2] = -(1 << (ba - 1))
    fa[1, 1::2] = (1 << (ba - 1)) - 1
    fb[::2, 0] = -(1 << (bb - 1))
    fb[1::3, 2] = (1 << (bb - 1)) - 1
    fa[0, 0] |= 1  # odd entries so the low bits matter
    fb[0, :] |= 1
    got = exact_fixed_matmul(fa, fb)
    expected = [[sum(int(x) * int(y) for x, y in zip(r, c, strict=True)) for c in fb.T.tolist()]
                for r in fa.tolist()]
    assert [[int(v) for v in row] for row in got.tolist()] == expected
    if max(abs(v) for row in expected for v in row) < 2**62 and ba + bb + math.ceil(math.log2(k)) <= 62:
        assert got.dtype == np.int64


# ---------------------------------------------------------------------- external oracle: onnxruntime
def _ort_matmul_integer(a, b, zpa, zpb):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    def ttype(x):
        return TensorProto.UINT8 if x.dtype == np.uint8 else TensorProto.INT8

    inputs = [helper.make_tensor_value_info(name, ttype(x), list(x.shape))
              for name, x in (("A", a), ("B", b), ("za", zpa), ("zb", zpb))]
    node = helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["Y"])
    out = helper.make_tensor_value_info("Y", TensorProto.INT32, [a.shape[0], b.shape[1]])
    graph = helper.make_graph([node], "g", inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"A": a, "B": b, "za": zpa, "zb": zpb})[0]


@pytest.mark.parametrize("a_signed,b_signed,per_column", [(False, False, False), (False, False, True),
                                                          (True, True, False), (True, True, True)])
def test_integer_gemm_matches_onnxruntime_matmul_integer(a_signed, b_signed, per_column):
    """uint8 x uint8 and int8 x int8 only: onnxruntime's x86 uint8 x int8 kernel (pmaddubsw) saturates its
    int16 pair sums, so it is not exact for u8 x s8 on this kind of CPU (observed: differs from plain int64
    arithmetic even with zero points 0) and cannot serve as an oracle there."""
    rng = np.random.default_rng(int(a_signed) * 4 + int(b_signed) * 2 + int(per_column))
    m, k, n = 9, 300, 11
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(0, 256, (k, n)).astype(np.uint8)
    a_dtype = np.int8 if a_signed else np.uint8
    b_dtype = np.int8 if b_signed else np.uint8
    zpa = rng.integers(-128, 128) if a_signed else rng.integers(0, 256)
    zpb = rng.integers(-128, 128, n) if b_signed else rng.integers(0, 256, n)
    if not per_column:
        zpb = zpb[:1]
    expected = _ort_matmul_integer(a.view(np.int8) if a_signed else a, b.view(np.int8) if b_signed else b,
                                   np.array([zpa], a_dtype), zpb.astype(b_dtype))
    got = gemm(a, "int8" if a_signed else "uint8", b, "int8" if b_signed else "uint8",
               a_zero_point=int(zpa), b_zero_point=zpb.reshape(1, -1))
    assert got.dtype == np.int64
    assert np.array_equal(got, expected.astype(np.int64))


# ---------------------------------------------------------------------- properties (hypothesis)
ALL_PAIRS = PAIRS + [("int8", "int8"), ("uint8", "int4"), ("int4", "int4"), ("nf4", "float8_e4m3fn")]


@settings(HYP, max_examples=60)
@given(st.sampled_from(ALL_PAIRS), st.integers(1, 6), st.integers(1, 70), st.integers(1, 6), st.integers(0, 2**32 - 1),
       st.booleans())
def test_property_gemm_equals_scalar_reference(pair, m, k, n, seed, with_specials):
    a_name, b_name = pair
    rng = np.random.default_rng(seed)
    a = random_codes(rng, a_name, (m, k), finite=not with_specials)
    b = random_codes(rng, b_name, (k, n), finite=not with_specials)
    got = gemm(a, a_name, b, b_name)
    if a_name == "nf4":
        nf4 = get_format("nf4").values()
        va = [[Fraction(float(nf4[c])) for c in row] for row in a.tolist()]
        vb = ref_matrix(b_name, b.T.copy())
        ref = [[ref_dot(r, c) for c in vb] for r in va]
    else:
        ref = ref_gemm(a_name, a, b_name, b)
    assert_matches(got.astype(np.float64), ref)
    # transposition symmetry: (A B)^T == B^T A^T with the formats swapped
    assert np.array_equal(gemm(b.T.copy(), b_name, a.T.copy(), a_name), got.T, equal_nan=True)


@settings(HYP, max_examples=60)
@given(st.integers(4, 24), st.integers(1, 120), st.integers(0, 2**32 - 1), st.sampled_from(["int8", "uint8", "int4"]))
def test_property_accumulator_width(bits, k, seed, a_name):
    """wrap is order independent (== wrap of the exact sum); at >= accumulator_bits nothing overflows."""
    rng = np.random.default_rng(seed)
    a = random_codes(rng, a_name, (3, k))
    b = random_codes(rng, "int8", (k, 4))
    exact_sum = gemm(a, a_name, b, "int8")
    wrapped = gemm_ex(a, a_name, b, "int8", accumulator=AccumulatorSpec(bits=bits, overflow="wrap"))
    span = 1 << bits
    assert wrapped.values.tolist() == [[((int(v) + span // 2) % span) - span // 2 for v in row]
                                       for row in exact_sum.tolist()]
    sat = gemm_ex(a, a_name, b, "int8", accumulator=AccumulatorSpec(bits=bits, overflow="saturate"))
    assert np.all(sat.values >= -(span // 2)) and np.all(sat.values <= span // 2 - 1)
    need = accumulator_bits(a_name, "int8", k)
    if bits >= need:
        assert wrapped.overflow_events == sat.overflow_events == 0
        assert np.array_equal(sat.values, exact_sum)


def test_float32_mode_rejects_zero_point_on_float_format():
    """Regression for core_bugs.md B9 (fixed in 8c3c144)."""
    a = np.full((1, 2), 0x38, np.uint8)
    with pytest.raises(TypeError, match=r"b_codes zero point applies to integer formats only, not 'float8_e4m3fn'"):
        gemm(a, "float8_e4m3fn", a.T.copy(), "float8_e4m3fn", b_zero_point=3, accumulate="float32")


@pytest.mark.parametrize("target,a_bits,b_bits", [(24, 8, 8), (24, 11, 12), (24, 5, 20), (53, 26, 26),
                                                   (53, 20, 30), (53, 22, 22), (62, 30, 31), (62, 31, 31),
                                                   (62, 28, 33)])
@pytest.mark.parametrize("side", [-1, 0, 1])
def test_exact_fixed_matmul_at_the_product_bound(target, a_bits, b_bits, side):
    """All-extreme odd operands with K chosen so K * max|a| * max|b| sits just below / at / just above
    2**target (float32, float64 and int64 limits): the (odd) sums are wrong by rounding if a path whose
    exactness bound does not hold is chosen."""
    from hwsim.gemm import exact_fixed_matmul

    amax, bmax = (1 << (a_bits - 1)) - 1, (1 << (b_bits - 1)) - 1
    k = max(1, (1 << target) // (amax * bmax) + side)
    assert k <= 100_000
    k |= 1  # odd K: odd sums
    fa = np.full((2, k), amax, dtype=np.int64)
    fa[1] = -amax
    fb = np.full((k, 2), bmax, dtype=np.int64)
    fb[:, 1] = -bmax
    fb[0, 1] = bmax - 2
    got = exact_fixed_matmul(fa, fb)
    expected = [[sum(int(x) * int(y) for x, y in zip(r, c, strict=True)) for c in fb.T.tolist()]
                for r in fa.tolist()]
    assert [[int(v) for v in row] for row in got.tolist()] == expected


@pytest.mark.parametrize("k", [171_195, 171_196, 171_197, 171_199])
def test_e4m3_at_the_float64_format_bound(k):
    """float8_e4m3fn x float8_e4m3fn: |F| <= 448 * 2**9 = 7 * 2**15, so K * (7 * 2**15)**2 <= 2**53 up to
    K = 171196 (one float64 GEMM); beyond it the limb path.  All-max operands plus one min-subnormal
    product make the exact sum odd in LSB units: exact below the bound, correctly rounded above it."""
    e4 = get_format("float8_e4m3fn")
    a = np.full((1, k), 0x7E, np.uint8)  # 448
    b = np.full((k, 2), 0x7E, np.uint8)
    b[:, 1] = 0xFE  # -448
    a[0, 0] = b[0, 0] = 0x01  # 2**-9 x 2**-9: one LSB of the accumulator
    b[0, 1] = 0x81
    exact_units = [(k - 1) * (7 << 15) ** 2 + 1, -((k - 1) * (7 << 15) ** 2 + 1)]
    fixed, lsb = gemm_fixed(a, e4, b, e4)
    assert lsb == -18 and [int(v) for v in fixed[0].tolist()] == exact_units
    got = gemm(a, e4, b, e4)
    assert got[0].tolist() == [float(Fraction(u, 1 << 18)) for u in exact_units]
    if k <= 171_196:
        assert abs(exact_units[0]) <= 2**53  # exactly representable: no rounding at all
        assert Fraction(got[0, 0]) == Fraction(exact_units[0], 1 << 18)


@pytest.mark.parametrize("k", [1025, 1536, 3000])
def test_float32_k_chunks_stay_exact_at_the_bound(k):
    """int8 x int8 beyond K = 1024 (float32's exact bound) splits K into exact float32 chunks; extreme codes
    (-128 x -128 everywhere in one row/column) and a weight cache give the Python-int result."""
    rng = np.random.default_rng(k)
    a = rng.integers(0, 256, size=(3, k)).astype(np.uint8)
    b = rng.integers(0, 256, size=(k, 4)).astype(np.uint8)
    a[0], b[:, 0] = 0x80, 0x80  # -128
    cache = {}
    for _ in range(2):  # second call reads the cached weight values
        got = gemm_ex(a, "int8", b, "int8", b_cache=cache).values
        ai, bi = a.view(np.int8).astype(object), b.view(np.int8).astype(object)
        assert np.array_equal(got, (ai @ bi).astype(np.int64))
    assert got[0, 0] == 128 * 128 * k
    assert any(key[0] == "gemm_b_values" and key[1] == "float32" for key in cache)
