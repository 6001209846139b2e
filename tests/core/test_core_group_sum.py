"""The group epilogue's exact dense evaluation returns the sequential rule's bits, and declines when inexact."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.formats import get_format
from hwsim.group_sum import group_sum, lsb_exponents, sequential_group_sum
from hwsim.qspec import QTensor, QuantSpec

SEEDS = st.integers(0, 2**32 - 1)


def _fp16(rng, shape, lo_exp, hi_exp):
    """Random fp16-representable magnitudes spread over 2^lo_exp .. 2^hi_exp, random signs."""
    v = np.ldexp(rng.uniform(1, 2, size=shape), rng.integers(lo_exp, hi_exp + 1, size=shape))
    return (v * rng.choice([-1, 1], size=shape)).astype(np.float16).astype(np.float64)


def _activation(rng, m, k, fmt="int8", per_row_zp=False):
    codes = rng.integers(0, get_format(fmt).num_codes, size=(m, k)).astype(np.uint8)
    zp = rng.integers(-3, 4, size=(m, 1)) if per_row_zp else 0
    return QTensor(codes, fmt, np.asarray(0.02), zp)


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, g=st.sampled_from([4, 16, 32]), groups=st.integers(1, 6), spread=st.integers(0, 24),
       kind=st.sampled_from(["q4_1", "q8_0", "uint4_zp", "mxfp4"]), per_row_zp=st.booleans())
def test_dense_evaluation_equals_sequential_rule(seed, g, groups, spread, kind, per_row_zp):
    rng = np.random.default_rng(seed)
    k, n = g * groups, 7
    x = _activation(rng, 5, k, per_row_zp=per_row_zp)
    scale = _fp16(rng, (groups, n), -12, -12 + min(spread, 14))
    offset = zp = None
    if kind == "q4_1":
        fmt, offset = "uint4", _fp16(rng, (groups, n), -10, -6)
    elif kind == "q8_0":
        fmt = "int8"
    elif kind == "uint4_zp":
        fmt, zp = "uint4", rng.integers(0, 16, size=(groups, n))
    else:
        fmt, scale = "float4_e2m1fn", np.ldexp(1.0, rng.integers(-spread - 4, 3, size=(groups, n))).astype(np.float64)
    codes = rng.integers(0, get_format(fmt).num_codes, size=(k, n)).astype(np.uint8)
    w = QuantSpec(fmt, "group", 0, g, scale=scale, zero_point=zp, offset=offset, codes=codes)
    fast = group_sum(x, w)
    assert w.cache, "fp16 / power-of-two scales must take the dense path"
    assert next(iter(w.cache.values())) is not None
    slow = sequential_group_sum(x, w)
    assert np.array_equal(fast, slow) and np.array_equal(np.signbit(fast), np.signbit(slow))


def test_full_mantissa_scales_fall_back_to_the_sequential_rule():
    """float64 scales with 53-bit mantissas: the exactness condition fails, the literal loop runs."""
    rng = np.random.default_rng(3)
    x = _activation(rng, 4, 64)
    w = QuantSpec("int8", "group", 0, 32, scale=rng.uniform(0.001, 0.01, size=(2, 6)),
                  codes=rng.integers(0, 256, size=(64, 6)).astype(np.uint8))
    y = group_sum(x, w)
    assert list(w.cache.values()) == [None]
    assert np.array_equal(y, sequential_group_sum(x, w))


def test_condition_is_tight_enough_to_catch_a_wide_spread():
    """A column whose scales span 2^40 breaks the 2^52-quanta bound for int8 x int8 groups of 32."""
    x = _activation(np.random.default_rng(0), 2, 64)
    scale = np.array([[2.0**-45], [2.0**-5]])
    w = QuantSpec("int8", "group", 0, 32, scale=scale, codes=np.full((64, 1), 200, np.uint8))
    group_sum(x, w)
    assert list(w.cache.values()) == [None]


def test_lsb_exponents():
    v = np.array([1.0, 0.75, -3 * 2.0**-20, 0.0, np.float64(np.float16(0.1))])
    e = lsb_exponents(v)
    assert e[:3].tolist() == [0, -2, -20] and np.isinf(e[3])
    assert np.ldexp(1.0, int(e[4])) * (v[4] / np.ldexp(1.0, int(e[4]))) == v[4]
    assert (v[4] / np.ldexp(1.0, int(e[4]))) % 2 == 1
