"""Requant shifter against TFLite's integer reference kernels (written here with Python ints) and
Fraction-based references of the single / rne / floor modes.

Shift conventions: hwsim ``real ~= M * 2**shift``; TFLite ``real ~= M * 2**(tflite_shift - 31)``, so
``shift == tflite_shift - 31`` for 32-bit multipliers.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from core_reference import (
    HYP,
    INT32_MAX,
    INT32_MIN,
    round_half_away,
    round_half_even,
    round_half_up,
    tflite_multiply_by_quantized_multiplier,
    tflite_quantize_multiplier,
)
from hypothesis import given
from hypothesis import strategies as st

from hwsim import get_format, quantize_multiplier, requantize
from hwsim.requant import (
    RequantSpec,
    requant_add_zero_point,
    requant_multiply,
    requant_round_shift,
    requant_saturate,
)


def quantize_multiplier_ref(real: float, bits: int) -> tuple[int, int]:
    """TFLite QuantizeMultiplier (gemmlowp build: no large-factor clamp) generalised to a bits-wide
    multiplier; returns (M, hwsim shift).  Factors >= 2**(bits-1) are out of the domain (hwsim rejects
    them: TFLite's left shift by >= 31 would be undefined)."""
    if real == 0:
        return 0, 0
    q, e = math.frexp(real)
    top = 1 << (bits - 1)
    m = round_half_away(Fraction(q) * top)
    if m == top:
        m //= 2
        e += 1
    if e < -(bits - 1):
        return 0, 0
    return m, e - (bits - 1)


def exact(acc: int, m: int, shift: int) -> Fraction:
    return Fraction(acc * m) * Fraction(2) ** shift


# ---------------------------------------------------------------------- quantize_multiplier
def _reals(rng) -> np.ndarray:
    m = rng.integers(1 << 30, 1 << 31, 3000)
    ties = (2 * m + 1) * 2.0**-32 * np.exp2(rng.integers(-20, 20, 3000))  # q * 2**31 ends in .5 exactly
    return np.concatenate([
        np.exp2(rng.uniform(-45, 30.99, 20000)), ties,
        [0.0, 1.0, 0.5, 2.0**-31, 2.0**-32, 2.0**-33, np.nextafter(2.0**-32, 0), 2.0**30,
         2.0**31 - 2.0**8, 1e9, (2.0**32 - 1) * 2.0**-32, (2.0**32 - 1) * 2.0**-40,
         np.nextafter(1.0, 0), 5e-324],
    ])


def test_quantize_multiplier_matches_tflite():
    reals = _reals(np.random.default_rng(31))
    m, s = quantize_multiplier(reals)
    assert m.dtype == np.int64 and s.dtype == np.int64 and m.shape == reals.shape
    for r, mi, si in zip(reals.tolist(), m.tolist(), s.tolist(), strict=True):
        qm, tshift = tflite_quantize_multiplier(r)
        if qm == 0:
            assert (mi, si) == (0, 0), r
        else:
            assert (mi, si) == (qm, tshift - 31), r
            assert (1 << 30) <= mi < (1 << 31)
        assert quantize_multiplier(r) == (mi, si)  # scalar input -> Python ints
    # spot checks of the documented edge cases
    assert quantize_multiplier((2.0**32 - 1) * 2.0**-32) == (1 << 30, -30)  # q rounds to 2**31: carry
    assert quantize_multiplier(2.0**30) == (1 << 30, 0)  # TFLite shift 31: no clamp in the gemmlowp build
    assert quantize_multiplier(2.0**-33) == (0, 0)  # TFLite shift -32 < -31: flushed
    assert quantize_multiplier(2.0**-32) == (1 << 30, -62)  # TFLite shift -31: kept
    assert quantize_multiplier(0.75 * 2.0**-31 + 2.0**-62) == (round(0.75 * 2**31) + 1, -62)


@pytest.mark.parametrize("bits", [8, 12, 16, 24])
def test_quantize_multiplier_narrow(bits):
    """Generalised to narrow multipliers (reals below 2**(bits-1) by at least the rounding carry)."""
    rng = np.random.default_rng(bits)
    reals = np.concatenate([np.exp2(rng.uniform(-2 * bits, bits - 1.01, 5000)),
                            (2 * rng.integers(1 << (bits - 2), 1 << (bits - 1), 500) + 1) * 2.0**-bits])
    m, s = quantize_multiplier(reals, bits=bits)
    for r, mi, si in zip(reals.tolist(), m.tolist(), s.tolist(), strict=True):
        assert (mi, si) == quantize_multiplier_ref(r, bits), r
        if mi:
            assert (1 << (bits - 2)) <= mi < (1 << (bits - 1))


def test_quantize_multiplier_error_shows_plain_value():
    """Regression for core_bugs.md B4 (fixed in 8739f4e)."""
    with pytest.raises(ValueError, match=r"real must be non-negative, not -0\.5$"):
        quantize_multiplier(-0.5)
    with pytest.raises(ValueError, match=r"real must be finite, not inf$"):
        quantize_multiplier([1.0, np.inf])


@pytest.mark.parametrize("bits", [32, 16])
def test_quantize_multiplier_rejects_carry_to_limit(bits):
    """Regression for core_bugs.md B7 (fixed in 8c3c144)."""
    real = np.nextafter(2.0 ** (bits - 1), 0)  # rounds to multiplier 2**(bits-1): the factor 2**(bits-1)
    with pytest.raises(ValueError, match=rf"real must be below 2\*\*{bits - 1}"):
        quantize_multiplier(real, bits=bits)


def test_quantize_multiplier_errors():
    with pytest.raises(ValueError, match=r"real must be non-negative, not"):
        quantize_multiplier(-0.5)
    with pytest.raises(ValueError, match=r"real must be finite, not"):
        quantize_multiplier([1.0, np.inf])
    with pytest.raises(ValueError, match=r"bits must be an integer in 2\.\.32, not 33"):
        quantize_multiplier(0.5, bits=33)
    with pytest.raises(ValueError, match=r"real must be below 2\*\*31 for 32-bit multipliers, not 2147483648\.0"):
        quantize_multiplier([1.0, 2.0**31])
    with pytest.raises(ValueError, match=r"real must be below 2\*\*15 for 16-bit multipliers, not 40000\.0"):
        quantize_multiplier(40000.0, bits=16)


# ---------------------------------------------------------------------- gemmlowp bit for bit
def _tflite_cases(rng, n):
    acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    small = rng.integers(-5000, 5000, n)
    acc = np.where(rng.random(n) < 0.3, small, acc)
    m = rng.integers(1 << 30, 1 << 31, n)
    special = rng.random(n)
    m = np.where(special < 0.05, 1 << 30, m)
    m = np.where((special >= 0.05) & (special < 0.1), (1 << 31) - 1, m)
    m = np.where((special >= 0.1) & (special < 0.12), rng.integers(0, 1 << 31, n), m)  # any non-negative M
    tshift = rng.integers(-31, 31, n)  # TFLite shift in [-31, 30]
    edges = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX]
    acc[:len(edges) * 4] = np.repeat(edges, 4)
    m[:len(edges) * 4] = np.tile([1 << 30, (1 << 31) - 1, 1 << 30, (1 << 31) - 1], len(edges))
    tshift[:len(edges) * 4] = np.tile([0, 0, -31, 30], len(edges))
    return acc, m, tshift


def test_gemmlowp_matches_tflite_random():
    rng = np.random.default_rng(2024)
    acc, m, tshift = _tflite_cases(rng, 100_000)
    got = requantize(acc, m, tshift - 31, out_format="int32", rounding="gemmlowp")
    assert got.dtype == np.int64
    expected = [tflite_multiply_by_quantized_multiplier(a, mm, t)
                for a, mm, t in zip(acc.tolist(), m.tolist(), tshift.tolist(), strict=True)]
    bad = np.flatnonzero(got != np.array(expected))
    assert bad.size == 0, [(int(acc[i]), int(m[i]), int(tshift[i]), int(got[i]), expected[i]) for i in bad[:5]]
    # int8 output with zero point: TFLite adds the zero point then clamps
    zp = rng.integers(-128, 128, acc.size)
    got8 = requantize(acc, m, tshift - 31, zp, out_format="int8")
    assert np.array_equal(got8, np.clip(np.array(expected) + zp, -128, 127))


@pytest.mark.parametrize("rounding", ["gemmlowp", "single", "rne", "floor"])
def test_int32_min_accumulator(rounding):
    """Regression for core_bugs.md B5 (fixed in 8739f4e): -2**31 is a valid int32 accumulator."""
    acc = np.array([INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN])
    m = np.array([1 << 30, (1 << 31) - 1, 1 << 30, (1 << 31) - 1])
    tshift = np.array([0, 0, -31, 30])
    got = requantize(acc, m, tshift - 31, out_format="int32", rounding=rounding)
    if rounding == "gemmlowp":
        expected = [tflite_multiply_by_quantized_multiplier(INT32_MIN, int(mm), int(t))
                    for mm, t in zip(m, tshift, strict=True)]
    else:
        expected = [max(INT32_MIN, min(INT32_MAX, REFS[rounding](exact(INT32_MIN, int(mm), int(t) - 31))))
                    for mm, t in zip(m, tshift, strict=True)]
    assert got.tolist() == expected


def test_gemmlowp_left_shifts():
    """TFLite shift > 0 (our shift in -30..-1): the accumulator is shifted left in int32 first."""
    rng = np.random.default_rng(7)
    n = 20_000
    acc = rng.integers(-(1 << 12), 1 << 12, n)
    acc[: n // 4] = rng.integers(INT32_MIN, INT32_MAX, n // 4)  # wraps in int32 like compiled C
    m = rng.integers(1 << 30, 1 << 31, n)
    tshift = rng.integers(1, 31, n)
    got = requantize(acc, m, tshift - 31, out_format="int32")
    expected = [tflite_multiply_by_quantized_multiplier(a, mm, t)
                for a, mm, t in zip(acc.tolist(), m.tolist(), tshift.tolist(), strict=True)]
    assert got.tolist() == expected


@pytest.mark.parametrize("m,tshift", [(1 << 30, -1), (1 << 30, -7), (1 << 30, -30), (1 << 30, -31),
                                      ((1 << 31) - 1, -1), ((1 << 31) - 1, -12), (1518500250, -5),
                                      (1 << 30, 0), (1 << 30, 3), (1717986918, -3)])
def test_gemmlowp_exhaustive_small_range(m, tshift):
    acc = np.arange(-(1 << 12), (1 << 12) + 1)
    got = requantize(acc, m, tshift - 31, out_format="int32")
    expected = [tflite_multiply_by_quantized_multiplier(a, m, tshift) for a in acc.tolist()]
    assert got.tolist() == expected


def test_gemmlowp_negative_ties_every_right_shift():
    """M = 2**30 (0.5): acc * 0.5 * 2**-r has exact ties for every right shift r = 1..31 -> away from 0."""
    for r in range(1, 32):
        base = np.array([1, 3, 5, 7, 9], dtype=np.int64) << r  # acc/2 = (2j+1) * 2**(r-1): ties at shift r
        acc = np.concatenate([base, -base, base + 2, -base - 2])
        acc = acc[np.abs(acc) <= INT32_MAX]
        got = requantize(acc, 1 << 30, -r - 31, out_format="int32")
        expected = [tflite_multiply_by_quantized_multiplier(a, 1 << 30, -r) for a in acc.tolist()]
        assert got.tolist() == expected, r
        ties = acc[: len(acc) // 2] if len(acc) else acc
        assert got[: len(ties)].tolist() == [round_half_away(Fraction(int(a), 2 << r)) for a in ties]


# ---------------------------------------------------------------------- single / rne / floor
REFS = {"single": round_half_up, "rne": round_half_even, "floor": math.floor}


@pytest.mark.parametrize("rounding", ["single", "rne", "floor"])
def test_modes_exhaustive_small_range(rounding):
    acc = np.arange(-(1 << 12), (1 << 12) + 1)
    for m, shift in [(1 << 30, -31), (1 << 30, -40), (3, -1), (3, -2), (5, -3), (1, -12), (1 << 30, -62),
                     (1717986918, -33), (7, 0), (3, 5)]:
        got = requantize(acc, m, shift, out_format="int32", rounding=rounding)
        ref = REFS[rounding]
        expected = [max(INT32_MIN, min(INT32_MAX, ref(exact(a, m, shift)))) for a in acc.tolist()]
        assert got.tolist() == expected, (m, shift)


@pytest.mark.parametrize("rounding", ["single", "rne", "floor"])
def test_modes_ties_every_right_shift(rounding):
    ref = REFS[rounding]
    for r in range(1, 62):
        odd = np.array([1, 3, 5, -1, -3, -5, 7, -7], dtype=np.int64)
        acc = odd << max(r - 1 - 30, 0)
        acc = acc[np.abs(acc) <= INT32_MAX]
        m = np.int64(1) << min(r - 1, 30)  # acc * m = odd * 2**(r-1): an exact tie at right shift r
        got = requantize(acc, m, -r, out_format="int32", rounding=rounding)
        assert got.tolist() == [ref(exact(a, int(m), -r)) for a in acc.tolist()], r


@pytest.mark.parametrize("rounding", ["single", "rne", "floor"])
def test_modes_random_wide_acc(rounding):
    rng = np.random.default_rng(len(rounding))
    n = 20_000
    acc = rng.integers(-(1 << 31), 1 << 31, n)
    m = rng.integers(0, 1 << 31, n)
    shift = rng.integers(-62, -20, n)
    got = requantize(acc, m, shift, out_format="int32", rounding=rounding)
    ref = REFS[rounding]
    expected = [max(INT32_MIN, min(INT32_MAX, ref(exact(a, mm, s))))
                for a, mm, s in zip(acc.tolist(), m.tolist(), shift.tolist(), strict=True)]
    assert got.tolist() == expected


def test_nonnegative_shift_saturates_exactly():
    acc = np.array([1, -1, 3, 1 << 20, -(1 << 20), 0])
    for rounding in ("single", "rne", "floor"):
        got = requantize(acc, 3, 4, out_format="int32", rounding=rounding)
        assert got.tolist() == [48, -48, 144, 3 << 24, -(3 << 24), 0]
        got = requantize(acc, 3, 12, out_format="int32", rounding=rounding)
        assert got.tolist() == [3 << 12, -(3 << 12), 9 << 12, INT32_MAX, INT32_MIN, 0]
        got = requantize(acc, (1 << 31) - 1, 62, out_format="int32", rounding=rounding)
        assert got.tolist() == [INT32_MAX, INT32_MIN, INT32_MAX, INT32_MAX, INT32_MIN, 0]
        got = requantize(acc, (1 << 31) - 1, 30, out_format="int16", rounding=rounding)
        assert got.tolist() == [32767, -32768, 32767, 32767, -32768, 0]


# ---------------------------------------------------------------------- zero point, saturation, per-channel
@pytest.mark.parametrize("out_format,lo,hi", [("int8", -128, 127), ("uint8", 0, 255), ("int4", -8, 7),
                                              ("uint4", 0, 15), ("int16", -32768, 32767)])
@pytest.mark.parametrize("rounding", ["gemmlowp", "single", "rne", "floor"])
def test_zero_point_then_saturate(out_format, lo, hi, rounding):
    rng = np.random.default_rng(hi)
    acc = rng.integers(-(1 << 20), 1 << 20, 5000)
    m, s = quantize_multiplier(rng.uniform(1e-5, 3e-3, 5000))
    zp = rng.integers(lo, hi + 1, 5000)
    got = requantize(acc, m, s, zp, out_format=out_format, rounding=rounding)
    base = requantize(acc, m, s, out_format="int32", rounding=rounding)
    assert np.array_equal(got, np.clip(base + zp, lo, hi))
    assert got.min() >= lo and got.max() <= hi
    assert (got == lo).any() and (got == hi).any()


def test_per_channel_arrays():
    rng = np.random.default_rng(3)
    acc = rng.integers(-(1 << 24), 1 << 24, (64, 10))
    reals = rng.uniform(1e-6, 1e-2, 10)
    m, s = quantize_multiplier(reals)
    zp = rng.integers(-20, 20, 10)
    for rounding in ("gemmlowp", "single", "rne", "floor"):
        got = requantize(acc, m, s, zp, out_format="int8", rounding=rounding)
        assert got.shape == (64, 10)
        for c in range(10):
            col = requantize(acc[:, c], int(m[c]), int(s[c]), int(zp[c]), out_format="int8", rounding=rounding)
            assert np.array_equal(got[:, c], col)
    ref = [[max(-128, min(127, tflite_multiply_by_quantized_multiplier(int(a), int(m[c]), int(s[c]) + 31)
                          + int(zp[c]))) for c, a in enumerate(row)] for row in acc.tolist()]
    assert requantize(acc, m, s, zp).tolist() == ref


# ---------------------------------------------------------------------- narrow multipliers
@pytest.mark.parametrize("bits", [8, 16])
def test_narrow_multiplier_gemmlowp_equals_zero_extended_32bit(bits):
    """A b-bit multiplier M with shift s is the 32-bit datapath with M << (32 - b), TFLite shift s + b - 1."""
    rng = np.random.default_rng(bits + 100)
    n = 30_000
    acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    m, s = quantize_multiplier(np.exp2(rng.uniform(-30, -1, n)), bits=bits)
    got = requantize(acc, m, s, out_format="int32", rounding="gemmlowp", multiplier_bits=bits)
    expected = [tflite_multiply_by_quantized_multiplier(a, mm << (32 - bits), ss + bits - 1)
                for a, mm, ss in zip(acc.tolist(), m.tolist(), s.tolist(), strict=True)]
    assert got.tolist() == expected


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("rounding", ["single", "rne", "floor"])
def test_narrow_multiplier_modes(bits, rounding):
    rng = np.random.default_rng(bits)
    acc = rng.integers(-(1 << 40), 1 << 40, 10_000)
    m, s = quantize_multiplier(np.exp2(rng.uniform(-40, -5, 10_000)), bits=bits)
    got = requantize(acc, m, s, out_format="int32", rounding=rounding, multiplier_bits=bits)
    ref = REFS[rounding]
    assert got.tolist() == [max(INT32_MIN, min(INT32_MAX, ref(exact(a, mm, ss))))
                            for a, mm, ss in zip(acc.tolist(), m.tolist(), s.tolist(), strict=True)]
    with pytest.raises(ValueError, match=rf"multiplier must lie in 0\.\.2\*\*{bits - 1}-1 for {bits}-bit"):
        requantize(acc[:3], 1 << (bits - 1), -5, rounding=rounding, multiplier_bits=bits)


# ---------------------------------------------------------------------- float / MX outputs
def _round_to_odd_f32(q: Fraction) -> np.float32:
    """q as a float32 rounded to odd (sticky LSB): a later rounding to <= 22 bits is then correct."""
    if q == 0:
        return np.float32(0)
    sign = -1 if q < 0 else 1
    q = abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1
    e = max(e, -126)  # float32 subnormal spacing 2**-149
    scaled = q / Fraction(2) ** (e - 23)
    kept = math.floor(scaled)
    if kept != scaled:
        kept |= 1
    return np.float32(sign * math.ldexp(kept, e - 23))


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float6_e3m2fn"])
def test_requantize_to_float_formats(name):
    rng = np.random.default_rng(len(name))
    n = 20_000
    acc = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    acc[: n // 2] = rng.integers(-3000, 3000, n // 2)
    m = rng.integers(1 << 30, 1 << 31, n)
    spec = get_format(name)
    top = math.log2(spec.max)
    shift = rng.integers(-62, -40 + int(top), n)
    got = requantize(acc, m, shift, out_format=name)
    assert got.dtype == np.uint8
    md = getattr(ml_dtypes, name)
    vals = np.array([_round_to_odd_f32(exact(a, mm, s))
                     for a, mm, s in zip(acc.tolist(), m.tolist(), shift.tolist(), strict=True)], dtype=np.float32)
    vals = np.clip(vals, np.float32(-spec.max), np.float32(spec.max))  # hwsim saturates
    expected = vals.astype(md).view(np.uint8)
    assert np.array_equal(got, expected)
    # exact ties of the output format survive (no double rounding through float64)
    mids = (spec.values()[1:8] + spec.values()[2:9]) / 2  # midpoints of small positive values
    tie_acc = (mids * 2.0**20).astype(np.int64)
    assert np.array_equal(tie_acc * 2.0**-20, mids)
    got_ties = requantize(tie_acc, 1 << 30, -50, out_format=name)
    assert np.array_equal(got_ties, mids.astype(np.float32).astype(md).view(np.uint8))
    with pytest.raises(ValueError, match=r"zero_point applies to integer outputs only, not 3"):
        requantize(acc[:2], m[:2], shift[:2], 3, out_format=name)


def test_requantize_to_mx():
    rng = np.random.default_rng(8)
    acc = rng.integers(-(1 << 20), 1 << 20, (4, 70))
    m = rng.integers(1 << 30, 1 << 31, 70)
    s = np.full(70, -45)
    t = requantize(acc, m, s, out_format="mxfp8_e4m3")
    values = np.array([[float(exact(a, int(mm), -45)) for a, mm in zip(row, m.tolist(), strict=True)]
                       for row in acc.tolist()])  # acc*M < 2**51: exact in float64
    ref = get_format("mxfp8_e4m3").quantize(values, axis=-1)
    assert np.array_equal(t.codes, ref.codes) and np.array_equal(t.scale_codes, ref.scale_codes)


# ---------------------------------------------------------------------- properties
@HYP
@given(st.integers(0, (1 << 31) - 1), st.integers(-62, -1), st.sampled_from(["gemmlowp", "single", "rne", "floor"]),
       st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=2, max_size=30))
def test_property_monotonic_in_acc(m, shift, rounding, accs):
    if rounding == "gemmlowp":
        shift = min(shift, -31)  # TFLite left shifts wrap in int32: not monotonic by design
    acc = np.sort(np.array(accs, dtype=np.int64))
    got = requantize(acc, m, shift, out_format="int32", rounding=rounding)
    assert np.all(np.diff(got) >= 0)


@HYP
@given(st.integers(INT32_MIN, INT32_MAX), st.integers(0, (1 << 31) - 1), st.integers(-62, -1))
def test_property_error_bounds(acc, m, shift):
    x = exact(acc, m, shift)
    if abs(x) > INT32_MAX - 2 or abs(acc << max(shift + 31, 0)) > INT32_MAX:
        return  # saturated, or TFLite's left shift would wrap in int32
    single = int(requantize([acc], m, shift, out_format="int32", rounding="single")[0])
    rne = int(requantize([acc], m, shift, out_format="int32", rounding="rne")[0])
    floor = int(requantize([acc], m, shift, out_format="int32", rounding="floor")[0])
    low = int(requantize([acc], m, shift, out_format="int32", rounding="gemmlowp")[0])
    assert abs(single - x) <= Fraction(1, 2) and abs(rne - x) <= Fraction(1, 2)
    assert 0 <= x - floor < 1
    r = max(-(shift + 31), 0)
    assert abs(low - x) <= Fraction(1, 2) + Fraction(1, 2 << r)  # double rounding bound
    assert low == tflite_multiply_by_quantized_multiplier(acc, m, shift + 31)


@HYP
@given(st.integers(-(1 << 29), 1 << 29), st.integers(1, 31))
def test_property_gemmlowp_ties_away_from_zero(half_acc, r):
    acc = 2 * half_acc  # M = 2**30 halves acc exactly, so only the final shift rounds
    got = int(requantize([acc], 1 << 30, -r - 31, out_format="int32")[0])
    assert got == round_half_away(Fraction(half_acc, 1 << r))
    assert int(requantize([-acc], 1 << 30, -r - 31, out_format="int32")[0]) == -got


# ---------------------------------------------------------------------- spec, stages, errors
def test_requant_spec_and_stages():
    rng = np.random.default_rng(12)
    acc = rng.integers(-(1 << 25), 1 << 25, 1000)
    m, s = quantize_multiplier(0.00123)
    for rounding in ("gemmlowp", "single", "rne", "floor"):
        spec = RequantSpec(rounding=rounding, out_format="uint8")
        assert np.array_equal(spec.apply(acc, m, s, 128),
                              requantize(acc, m, s, 128, out_format="uint8", rounding=rounding))
        if rounding != "gemmlowp":
            staged = requant_saturate(requant_add_zero_point(
                requant_round_shift(requant_multiply(acc, np.int64(m)), np.int64(s), rounding), 128), "uint8")
            assert np.array_equal(staged, spec.apply(acc, m, s, 128))
    with pytest.raises(ValueError, match=r"rounding must be one of gemmlowp, single, rne, floor, not 'up'"):
        RequantSpec(rounding="up")
    with pytest.raises(ValueError, match=r"multiplier_bits must be an integer in 2\.\.32, not 40"):
        RequantSpec(multiplier_bits=40)
    with pytest.raises(ValueError, match=r"unknown format name.*not 'int99'"):
        RequantSpec(out_format="int99")


def test_requantize_errors():
    with pytest.raises(ValueError, match=r"rounding must be one of gemmlowp, single, rne, floor, not 'nearest'"):
        requantize([1], 1 << 30, -31, rounding="nearest")
    with pytest.raises(TypeError, match=r"acc must be an integer array, not dtype 'float64'"):
        requantize([1.5], 1 << 30, -31)
    with pytest.raises(TypeError, match=r"multiplier must be an integer array, not dtype 'float64'"):
        requantize([1], 0.5, -31)
    with pytest.raises(TypeError, match=r"shift must be an integer array, not dtype 'float64'"):
        requantize([1], 1 << 30, -31.0)
    with pytest.raises(ValueError,
                       match=r"multiplier must lie in 0\.\.2\*\*31-1 for 32-bit multipliers, not 2147483648"):
        requantize([1], 1 << 31, -31)
    with pytest.raises(ValueError, match=r"multiplier must lie in .*, not -1"):
        requantize([1], -1, -31)
    with pytest.raises(ValueError, match=r"acc must .*, not 2147483648"):
        requantize([1 << 31], 1 << 30, -31)
    with pytest.raises(ValueError, match=r"acc must lie within ±2\*\*31 so acc\*M fits int64, not 2147483648"):
        requantize([1 << 31], 1 << 30, -31, rounding="single")
    with pytest.raises(ValueError, match=r"shift must lie in -62\.\.62, not -63"):
        requantize([1], 1 << 30, -63, rounding="single")
    with pytest.raises(ValueError, match=r"unknown format name.*not 'int1'"):
        requantize([1], 1 << 30, -31, out_format="int1")
