"""Float element formats against ml_dtypes (the external oracle) and a bit-field decoder.

Encoding is checked on >= 1,000,000 float32 inputs per format: random bit patterns (NaN payloads of
both signs, Inf, float32 subnormals, huge values), log-uniform values across the format's range, every
exact tie (midpoint between adjacent representable magnitudes, including 0 <-> min subnormal and
max <-> the first overflow level) and its two float32 neighbours, and the special values.  ml_dtypes is
always given float32 (a float64 input would be rounded twice on its side).
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from core_reference import float_code_value

from hwsim import get_format

FLOATS = {
    # name: (exponent bits, mantissa bits, bias, inf/nan convention, signed)
    "float4_e2m1fn": (2, 1, 1, "none", True),
    "float6_e2m3fn": (2, 3, 1, "none", True),
    "float6_e3m2fn": (3, 2, 3, "none", True),
    "float8_e4m3fn": (4, 3, 7, "fn", True),
    "float8_e5m2": (5, 2, 15, "ieee", True),
    "float8_e8m0fnu": (8, 0, 127, "fn", False),
}
N_RANDOM = 1_000_000


def _md(name):
    return getattr(ml_dtypes, name)


def _md_codes(x32: np.ndarray, name: str) -> np.ndarray:
    assert x32.dtype == np.float32
    with np.errstate(invalid="ignore"):  # the oracle itself flags FE_INVALID on signaling NaNs
        return x32.astype(_md(name)).view(np.uint8)


def _md_decode(name: str) -> np.ndarray:
    bits = ml_dtypes.finfo(_md(name)).bits
    return np.arange(1 << bits, dtype=np.uint8).view(_md(name)).astype(np.float64)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("name", list(FLOATS))
def test_decode_every_code_matches_ml_dtypes(name):
    spec = get_format(name)
    expected = _md_decode(name)
    codes = np.arange(spec.num_codes, dtype=np.uint8)
    got = spec.decode(codes)
    assert got.dtype == np.float64
    assert _same(got, expected)
    assert _same(spec.values(), expected)
    # sign of zero too
    assert np.array_equal(np.signbit(got[got == 0]), np.signbit(expected[expected == 0]))


@pytest.mark.parametrize("name", list(FLOATS))
def test_decode_matches_bitfield_reference(name):
    e, m, bias, inf_nan, signed = FLOATS[name]
    spec = get_format(name)
    got = spec.decode(np.arange(spec.num_codes, dtype=np.uint8))
    for code in range(spec.num_codes):
        ref = float_code_value(code, e, m, bias, inf_nan, signed)
        if ref == "nan":
            assert math.isnan(got[code]), code
        elif ref in ("inf", "-inf"):
            assert got[code] == float(ref), code
        else:
            assert got[code] == ref, code


@pytest.mark.parametrize("name", list(FLOATS))
def test_spec_attributes_match_ml_dtypes(name):
    e, m, bias, inf_nan, signed = FLOATS[name]
    spec = get_format(name)
    fi = ml_dtypes.finfo(_md(name))
    table = _md_decode(name)
    finite = table[np.isfinite(table)]
    assert spec.name == name and spec.kind == "float"
    assert spec.bits == fi.bits == 1 + e + m - (0 if signed else 1)
    assert spec.max == float(fi.max) == finite.max()
    assert spec.min == finite.min()
    assert spec.min_subnormal == float(fi.smallest_subnormal)
    assert spec.min_normal == float(fi.smallest_normal)
    assert spec.has_nan == bool(np.isnan(table).any())
    assert spec.has_inf == bool(np.isinf(table).any())
    assert (spec.exponent_bits, spec.mantissa_bits, spec.bias) == (e, m, bias)


def _ties_and_neighbours(name: str) -> np.ndarray:
    """Every midpoint between adjacent representable magnitudes (plus 0 and the overflow level),
    both signs, and the float32 neighbours of each."""
    table = _md_decode(name)
    mags = np.unique(np.abs(table[np.isfinite(table)]))
    mags = np.union1d(mags, [0.0])
    top = mags[-1]
    ulp_top = top - mags[-2] if name != "float8_e8m0fnu" else top  # e8m0: next power of two is 2*top
    levels = np.append(mags, top + ulp_top)
    mids = (levels[:-1] + levels[1:]) / 2  # exact in float64 and in float32 (<= 4 significant bits)
    mids32 = mids.astype(np.float32)
    assert np.array_equal(mids32.astype(np.float64), mids)
    levels32 = levels[levels <= np.finfo(np.float32).max].astype(np.float32)  # e8m0: 2**128 overflows
    inf = np.float32(np.inf)
    parts = [mids32, np.nextafter(mids32, inf), np.nextafter(mids32, -inf), levels32,
             np.nextafter(levels32, inf), np.nextafter(levels32, -inf)]
    x = np.concatenate(parts)
    return np.concatenate([x, -x])


SIGNALING_NANS = np.array([0x7F800001, 0xFF800001, 0x7FA00000, 0xFFBFFFFF], dtype=np.uint32)


def _specials() -> np.ndarray:
    bits = np.array([0x7FC00000, 0xFFC00000, 0x7FC00001, 0xFFC00001, 0x7FFFFFFF, 0xFFFFFFFF,  # NaNs
                     0x7F800000, 0xFF800000, 0x00000000, 0x80000000,  # +-Inf, +-0
                     0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000, 0x80800000,
                     0x7F7FFFFF, 0xFF7FFFFF], dtype=np.uint32)
    return bits.view(np.float32)


def _random_inputs(name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spec = get_format(name)
    n_bits = N_RANDOM // 4
    raw = rng.integers(0, 1 << 32, size=n_bits, dtype=np.uint64).astype(np.uint32).view(np.float32)
    lo = math.log2(spec.min_subnormal) - 4
    hi = math.log2(spec.max) + 3
    n_log = N_RANDOM // 2
    with np.errstate(over="ignore"):  # e8m0: beyond float32's range becomes Inf (also covered)
        mags = np.exp2(rng.uniform(lo, hi, size=n_log)).astype(np.float32)
    signs = np.where(rng.random(n_log) < 0.5, -1, 1).astype(np.float32)
    # float32 subnormals and tiny normals
    n_tiny = N_RANDOM // 8
    tiny = rng.integers(1, 1 << 24, size=n_tiny, dtype=np.uint32).view(np.float32)
    tiny = np.where(rng.random(n_tiny) < 0.5, -tiny, tiny)
    # values just around the representable levels (a few float32 ulps away)
    table = _md_decode(name)
    finite = table[np.isfinite(table)].astype(np.float32)
    n_near = N_RANDOM - n_bits - n_log - n_tiny
    base = rng.choice(finite, size=n_near)
    steps = rng.integers(-3, 4, size=n_near)
    near = base.copy()
    for s in range(1, 4):
        near = np.where(steps >= s, np.nextafter(near, np.float32(np.inf)), near)
        near = np.where(steps <= -s, np.nextafter(near, np.float32(-np.inf)), near)
    return np.concatenate([raw, mags * signs, tiny, near.astype(np.float32),
                           _ties_and_neighbours(name), _specials(), SIGNALING_NANS.view(np.float32)])


@pytest.mark.parametrize("name", list(FLOATS))
def test_encode_matches_ml_dtypes_bit_for_bit(name):
    x = _random_inputs(name, seed=sum(map(ord, name)))
    assert x.size >= N_RANDOM and x.dtype == np.float32
    spec = get_format(name)

    got = spec.encode(x, saturate=False)
    expected = _md_codes(x, name)
    assert got.dtype == np.uint8
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, (f"{bad.size} mismatches, e.g. x={x[bad[:5]]!r} "
                           f"got={got[bad[:5]]!r} ml_dtypes={expected[bad[:5]]!r}")

    got_sat = spec.encode(x, saturate=True)
    clipped = np.clip(x, np.float32(-spec.max), np.float32(spec.max))  # NaN stays NaN
    expected_sat = _md_codes(clipped, name)
    bad = np.flatnonzero(got_sat != expected_sat)
    assert bad.size == 0, (f"{bad.size} saturating mismatches, e.g. x={x[bad[:5]]!r} "
                           f"got={got_sat[bad[:5]]!r} ml_dtypes={expected_sat[bad[:5]]!r}")


@pytest.mark.parametrize("name", list(FLOATS))
def test_encode_every_exact_tie(name):
    """Ties alone (no random dilution): every midpoint, both signs, saturating and not."""
    x = _ties_and_neighbours(name)
    spec = get_format(name)
    assert np.array_equal(spec.encode(x, saturate=False), _md_codes(x, name))


@pytest.mark.parametrize("name", list(FLOATS))
def test_decode_encode_round_trip_every_finite_code(name):
    spec = get_format(name)
    codes = np.arange(spec.num_codes, dtype=np.uint8)
    values = spec.decode(codes)
    finite = np.isfinite(values)
    again = spec.encode(values[finite].astype(np.float32), saturate=False)
    assert np.array_equal(again, codes[finite])


@pytest.mark.parametrize("name", list(FLOATS))
def test_float64_input_is_not_double_rounded(name):
    """encode compares float64 inputs exactly: just above a tie (not representable in float32) rounds up."""
    spec = get_format(name)
    table = _md_decode(name)
    mags = np.unique(np.abs(table[np.isfinite(table)]))
    if name == "float8_e8m0fnu":
        # documented ml_dtypes quirk: anything in (2**-127, 2**-126) becomes 2**-126; skip that binade
        mags = mags[1:]
    mids = (mags[:-1] + mags[1:]) / 2
    above = mids * (1 + 2.0**-40)
    below = mids * (1 - 2.0**-40)
    assert np.array_equal(spec.decode(spec.encode(above)), mags[1:])
    assert np.array_equal(spec.decode(spec.encode(below)), mags[:-1])


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float4_e2m1fn"])
def test_encode_signaling_nan_without_warning(name):
    """Regression for core_bugs.md B1 (fixed in aad14a1): warnings are errors in this suite."""
    x = SIGNALING_NANS.view(np.float32)
    got = get_format(name).encode(x, saturate=False)  # warnings are errors in this suite
    assert np.array_equal(got, _md_codes(x, name))


def test_wrong_code_dtype_and_range_errors():
    spec = get_format("float8_e4m3fn")
    with pytest.raises(TypeError, match=r"codes for float8_e4m3fn must be an integer array.*not dtype 'float64'"):
        spec.decode(np.array([1.0]))
    with pytest.raises(ValueError, match=r"codes for float8_e4m3fn must lie in 0\.\.255, not 256"):
        spec.decode(np.array([3, 256]))
    with pytest.raises(ValueError, match=r"codes for float8_e4m3fn must lie in 0\.\.255, not -1"):
        spec.decode(np.array([-1]))
    fp4 = get_format("float4_e2m1fn")
    with pytest.raises(ValueError, match=r"codes for float4_e2m1fn must lie in 0\.\.15, not 16"):
        fp4.decode(np.array([16], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"must lie in 0\.\.15, not 200"):
        fp4.is_special(np.array([200], dtype=np.uint8))


def test_unknown_format_names():
    with pytest.raises(ValueError, match=r"unknown format name.*not 'float8_e4m3'"):
        get_format("float8_e4m3")
    with pytest.raises(ValueError, match=r"unknown format name.*not 'int1'"):
        get_format("int1")
    with pytest.raises(TypeError, match=r"format must be a format name or spec, not 8"):
        get_format(8)
