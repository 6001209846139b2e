"""Integer, dINT and codebook (NF4) formats against scalar references; the fixed-point view."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from core_reference import HYP, dint_encode_scalar, dint_levels, round_half_even
from hypothesis import given
from hypothesis import strategies as st

from hwsim import get_format
from hwsim.formats import DintFormat, list_formats

# Published NF4 table (QLoRA paper appendix / bitsandbytes functional.py), the external reference.
NF4_PUBLISHED = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
]

INT_NAMES = ["int2", "int4", "uint4", "int8", "uint8", "int12", "uint16", "int16"]


# ---------------------------------------------------------------------- integers
@pytest.mark.parametrize("name", INT_NAMES)
def test_int_decode_is_twos_complement(name):
    spec = get_format(name)
    bits, signed = spec.bits, name.startswith("int")
    codes = np.arange(1 << bits, dtype=np.uint16 if bits > 8 else np.uint8)
    expected = [(c - (1 << bits) if signed and c >= 1 << (bits - 1) else c) for c in range(1 << bits)]
    assert spec.decode(codes).tolist() == expected
    assert spec.values().tolist() == expected
    assert (spec.kind, spec.signed) == ("int", signed)
    assert spec.max == max(expected) and spec.min == min(expected)
    assert spec.lo == min(expected) and spec.hi == max(expected)
    assert spec.to_fixed(codes).tolist() == expected and spec.lsb_exponent == 0
    assert not spec.is_special(codes).any()


def _int_encode_ref(x: float, bits: int, signed: bool, saturate: bool) -> int:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if math.isinf(x):
        v = hi if x > 0 else lo
    else:
        v = round_half_even(Fraction(x))
        if saturate:
            v = min(max(v, lo), hi)
    return v % (1 << bits)


@pytest.mark.parametrize("name", ["int4", "uint4", "int8", "uint8", "int16", "uint16", "int32", "uint32"])
def test_int_encode_rne_clamp_and_wrap(name):
    spec = get_format(name)
    bits, signed = spec.bits, name.startswith("int")
    rng = np.random.default_rng(bits * 7 + signed)
    span = float(1 << bits)
    x = np.concatenate([
        rng.uniform(-2 * span, 2 * span, 4000),
        np.round(rng.uniform(-2 * span, 2 * span, 2000)) + 0.5,  # exact ties
        np.arange(-40, 41) / 2, [0.0, -0.0, 1e30, -1e30, 2.0**62 + 2.0**11, -(2.0**70)],
        np.nextafter(np.round(rng.uniform(-span, span, 500)) + 0.5, np.inf),
        np.nextafter(np.round(rng.uniform(-span, span, 500)) + 0.5, -np.inf),
    ])
    for saturate in (True, False):
        got = spec.encode(x, saturate=saturate)
        expected = [_int_encode_ref(float(v), bits, signed, saturate) for v in x]
        assert got.tolist() == expected, saturate
    assert spec.encode(np.array([np.inf, -np.inf])).tolist() == [
        _int_encode_ref(np.inf, bits, signed, True), _int_encode_ref(-np.inf, bits, signed, True)]


def test_int_encode_errors():
    with pytest.raises(ValueError, match=r"x contains NaN; int8 has no NaN code, not nan"):
        get_format("int8").encode([1.0, np.nan])
    with pytest.raises(ValueError, match=r"x contains Inf; int8 cannot wrap Inf, not inf"):
        get_format("int8").encode([np.inf], saturate=False)
    with pytest.raises(ValueError, match=r"integers for int4 must lie in -8\.\.7"):
        get_format("int4").int_to_code([8])
    with pytest.raises(ValueError, match=r"codes for int4 must lie in 0\.\.15, not 16"):
        get_format("int4").decode([16])
    with pytest.raises(TypeError, match=r"codes for uint8 must be an integer array of raw codes, not dtype 'float32'"):
        get_format("uint8").decode(np.zeros(2, np.float32))


def test_int_code_dtypes():
    assert get_format("int8").encode([1.0]).dtype == np.uint8
    assert get_format("int4").encode([1.0]).dtype == np.uint8
    assert get_format("int16").encode([1.0]).dtype == np.uint16
    assert get_format("int32").encode([-1.0]).tolist() == [0xFFFFFFFF]


# ---------------------------------------------------------------------- dINT
@pytest.mark.parametrize("bits,alpha", [(3, Fraction(1, 2)), (4, Fraction(1, 2)), (5, Fraction(1, 2)),
                                        (8, Fraction(1, 2)), (4, Fraction(1, 4)), (4, Fraction(3, 4))])
def test_dint_decode_every_code(bits, alpha):
    spec = get_format(f"dint{bits}") if alpha == Fraction(1, 2) else DintFormat(
        name=f"dint{bits}_a{alpha}", bits=bits, alpha=float(alpha))
    levels = dint_levels(bits, alpha)
    codes = np.arange(1 << bits, dtype=np.uint8)
    got = spec.decode(codes)
    assert [Fraction(v) for v in got] == [levels[c] for c in range(1 << bits)]
    assert 0.0 not in got  # no exact zero
    assert spec.kind == "dint" and spec.alpha == float(alpha)
    assert spec.max == (1 << (bits - 1)) - 1 and spec.min == -spec.max
    assert spec.min_subnormal == float(alpha)
    fixed = spec.to_fixed(codes)
    assert [Fraction(int(f)) * Fraction(2) ** spec.lsb_exponent for f in fixed] == [levels[c] for c in range(1 << bits)]


def _dint_inputs(bits: int, alpha: Fraction, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = sorted(set(dint_levels(bits, alpha).values()))
    mids = [float((a + b) / 2) for a, b in zip(levels[:-1], levels[1:], strict=True)]
    mids += [float(levels[-1] + Fraction(1, 2)), float(levels[0] - Fraction(1, 2))]
    mids = np.array(mids)
    hi = float(levels[-1]) + 3
    x = np.concatenate([rng.uniform(-hi, hi, 24000 >> bits), mids, np.nextafter(mids, np.inf),
                           np.nextafter(mids, -np.inf), [float(v) for v in levels],
                           [0.0, -0.0, 1e-3, -1e-3, 1e300, -1e300]])
    return x


@pytest.mark.parametrize("bits,alpha", [(3, Fraction(1, 2)), (4, Fraction(1, 2)), (6, Fraction(1, 2)),
                                        (4, Fraction(1, 4)), (4, Fraction(3, 4))])
def test_dint_encode_matches_scalar_reference(bits, alpha):
    spec = get_format(f"dint{bits}") if alpha == Fraction(1, 2) else DintFormat(
        name=f"dint{bits}_a{alpha}", bits=bits, alpha=float(alpha))
    x = _dint_inputs(bits, alpha, seed=bits * 100 + alpha.denominator)
    got = spec.encode(x)
    expected = [dint_encode_scalar(float(v), bits, alpha) for v in x]
    bad = [(float(v), int(g), e) for v, g, e in zip(x, got, expected, strict=True) if g != e]
    assert not bad, bad[:10]
    inf = spec.encode(np.array([np.inf, -np.inf]))
    assert spec.decode(inf).tolist() == [spec.max, spec.min]


def test_dint4_documented_examples():
    spec = get_format("dint4")
    assert spec.encode([0.0, -0.0, 0.25, -0.25, 0.75, -0.75, 1.5, 2.5, -7.6, 100.0]).tolist() == [
        0, 8, 0, 8, 0, 8, 2, 2, 9, 7]
    assert spec.decode([0, 8, 1, 15, 7, 9]).tolist() == [0.5, -0.5, 1.0, -1.0, 7.0, -7.0]


def test_dint_errors():
    with pytest.raises(ValueError, match=r"alpha must lie strictly between 0 and 1, not 1\.5"):
        DintFormat(name="dint4_bad", bits=4, alpha=1.5)
    with pytest.raises(ValueError, match=r"x contains NaN; dint4 has no NaN code"):
        get_format("dint4").encode([np.nan])


@pytest.mark.parametrize("x", [-5e-324, -1e-20, -3.306255949081833e-32, 5e-324, 1e-20])
def test_dint_encode_tiny_keeps_sign(x):
    """Regression for core_bugs.md B3 (fixed in 8739f4e): no false tie between -alpha and +alpha."""
    spec = get_format("dint4")
    assert int(spec.encode([x])[0]) == dint_encode_scalar(x, 4, Fraction(1, 2)) == (8 if x < 0 else 0)


@HYP
@given(st.floats(-10, 10, allow_nan=False, width=32))
def test_dint4_encode_is_nearest(x):
    spec = get_format("dint4")
    code = int(spec.encode([x])[0])
    assert code == dint_encode_scalar(x, 4, Fraction(1, 2))
    if x != 0:
        best = min(abs(Fraction(x) - Fraction(v)) for v in spec.values())
        assert abs(Fraction(x) - Fraction(spec.decode([code])[0])) == best


# ---------------------------------------------------------------------- codebooks
def test_nf4_matches_published_table():
    spec = get_format("nf4")
    values = spec.values()
    assert spec.kind == "codebook" and spec.bits == 4
    np.testing.assert_allclose(values, NF4_PUBLISHED, rtol=0, atol=1e-6)
    assert values[7] == 0.0 and values[0] == -1.0 and values[15] == 1.0
    assert np.all(np.diff(values) > 0)
    # entries are float32 values (dyadic) so the fixed-point view is exact
    assert np.array_equal(values, values.astype(np.float32).astype(np.float64))
    fixed = spec.to_fixed(np.arange(16, dtype=np.uint8))
    assert np.array_equal(np.ldexp(fixed.astype(np.float64), spec.lsb_exponent), values)


def test_nf4_encode_nearest_ties_low():
    spec = get_format("nf4")
    v = spec.values()
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-1.5, 1.5, 5000), v, [-5.0, 5.0, 0.0, -0.0]])
    got = spec.encode(x)
    for xi, code in zip(x, got, strict=True):
        d = np.abs(Fraction(float(xi)) - np.array([Fraction(float(t)) for t in v]))
        best = min(d)
        assert d[code] == best
        assert code == min(i for i in range(16) if d[i] == best)  # ties -> lower entry
    mids = (v[:-1] + v[1:]) / 2
    exact = [m for m, lo, hi in zip(mids, v[:-1], v[1:], strict=True)
             if Fraction(float(m)) - Fraction(float(lo)) == Fraction(float(hi)) - Fraction(float(m))]
    assert exact  # float64 midpoints of float32 entries are exact
    assert np.array_equal(spec.encode(np.array(exact)),
                          [int(np.searchsorted(v, m)) - 1 for m in exact])


# ---------------------------------------------------------------------- fixed-point view
FIXED_FORMATS = ["int4", "int8", "uint8", "dint4", "dint8", "float4_e2m1fn", "float6_e2m3fn",
                 "float6_e3m2fn", "float8_e4m3fn", "float8_e5m2", "nf4"]


@pytest.mark.parametrize("name", FIXED_FORMATS)
def test_fixed_view_exact_and_tight(name):
    spec = get_format(name)
    codes = np.arange(spec.num_codes, dtype=np.uint8)
    values = spec.decode(codes)
    fixed = spec.to_fixed(codes)
    special = spec.is_special(codes)
    assert np.array_equal(special, ~np.isfinite(values))
    assert fixed.dtype == np.int64
    assert np.all(fixed[special] == 0)
    for f, v in zip(fixed[~special], values[~special], strict=True):
        assert Fraction(int(f)) * Fraction(2) ** spec.lsb_exponent == Fraction(float(v))
    # the LSB is the finest needed (some F is odd) and fixed_bits is the tight two's-complement width
    assert np.any(fixed % 2 == 1)
    fb = spec.fixed_bits
    assert fixed.min() >= -(1 << (fb - 1)) and fixed.max() <= (1 << (fb - 1)) - 1
    assert fixed.min() < -(1 << (fb - 2)) or fixed.max() > (1 << (fb - 2)) - 1


def test_list_formats_covers_issue_names():
    names = list_formats()
    for required in ["int2", "int4", "uint4", "int8", "uint8", "int16", "uint16", "float4_e2m1fn",
                     "float6_e2m3fn", "float6_e3m2fn", "float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu",
                     "dint4", "dint8", "nf4", "mxfp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3",
                     "mxfp8_e5m2", "mxint8"]:
        assert required in names
        assert get_format(required).name == required
    assert len(names) == len(set(names))
