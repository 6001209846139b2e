"""Quantizers: per-tensor / per-channel / per-group scales, symmetric and asymmetric, pow2 scales,
round trips, against an explicit per-group loop written here."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import get_format
from hwsim.quantize import dequantize, fake_quantize, quantize


def _groups(shape, granularity, axis, group_size):
    """Yield index tuples (slices) of every quantization group."""
    ndim = len(shape)
    if granularity == "tensor":
        yield tuple(slice(None) for _ in range(ndim))
        return
    if granularity == "channel":
        for i in range(shape[axis]):
            idx = [slice(None)] * ndim
            idx[axis] = i
            yield tuple(idx)
        return
    others = [range(shape[d]) if d != axis else [None] for d in range(ndim)]
    for combo in np.ndindex(*[len(o) for o in others]):
        for g in range(shape[axis] // group_size):
            idx = []
            for d in range(ndim):
                idx.append(slice(g * group_size, (g + 1) * group_size) if d == axis else combo[d])
            yield tuple(idx)


CASES = [("tensor", -1, None), ("channel", 0, None), ("channel", 1, None), ("channel", -1, None),
         ("group", -1, 32), ("group", 1, 64), ("group", 0, 16)]


@pytest.mark.parametrize("granularity,axis,group_size", CASES)
@pytest.mark.parametrize("name", ["int8", "int4", "uint8"])
def test_integer_symmetric_and_asymmetric(name, granularity, axis, group_size):
    spec = get_format(name)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((48, 128)) * np.exp2(rng.integers(-4, 4, (48, 1)))
    x[5, 7] = 0.0
    for symmetric in ([True, False] if spec.signed else [False]):
        qt = quantize(x, name, granularity=granularity, axis=axis, group_size=group_size, symmetric=symmetric)
        assert qt.codes.shape == x.shape and qt.codes.dtype == spec.code_dtype
        q = spec.decode(qt.codes)
        deq = dequantize(qt)
        assert np.array_equal(deq, fake_quantize(x, name, granularity=granularity, axis=axis,
                                                 group_size=group_size, symmetric=symmetric))
        n_groups = 0
        for idx in _groups(x.shape, granularity, axis % 2, group_size):
            n_groups += 1
            xs = x[idx]
            s = qt.expand(qt.scale)[idx]
            zp = qt.expand(qt.zero_point)[idx]
            assert np.all(s == s.flat[0]) and np.all(zp == zp.flat[0])
            s, zp = float(s.flat[0]), int(zp.flat[0])
            if symmetric:
                assert zp == 0
                assert s == np.max(np.abs(xs)) / spec.hi
            else:
                lo, hi = min(xs.min(), 0.0), max(xs.max(), 0.0)  # the range always includes 0
                assert s == (hi - lo) / (spec.hi - spec.lo)
                assert spec.lo <= zp <= spec.hi
                assert zp == int(np.clip(np.rint(spec.lo - lo / s), spec.lo, spec.hi))
            expected_q = np.clip(np.rint(xs / s) + zp, spec.lo, spec.hi)
            assert np.array_equal(q[idx], expected_q)
            assert np.all(np.abs(deq[idx] - xs) <= s / 2 * (1 + 1e-12) + 1e-300)
            assert np.array_equal(deq[idx], (expected_q - zp) * s)
        expected_groups = {"tensor": 1, "channel": x.shape[axis % 2],
                           "group": x.size // (group_size or 1)}[granularity]
        assert n_groups == expected_groups == qt.scale.size


def test_asymmetric_range_includes_zero():
    spec = get_format("uint8")
    pos = np.linspace(0.5, 3.0, 64).reshape(4, 16)
    qt = quantize(pos, "uint8", symmetric=False)
    assert int(qt.zero_point.flat[0]) == spec.lo == 0 and float(qt.scale.flat[0]) == 3.0 / 255
    neg = -pos
    qt = quantize(neg, "uint8", symmetric=False)
    assert int(qt.zero_point.flat[0]) == 255
    qt = quantize(neg, "int8", symmetric=False, granularity="channel", axis=0)
    assert np.all(qt.zero_point == 127)
    mixed = np.array([[-1.0, 0.0, 3.0]])
    qt = quantize(mixed, "uint8", symmetric=False)
    assert dequantize(qt)[0, 1] == 0.0  # real zero is exactly representable
    assert int(qt.zero_point.flat[0]) == 64  # round(0 - (-1) / (4/255)) = round(63.75)


@pytest.mark.parametrize("name", ["int8", "int4", "float8_e4m3fn", "float4_e2m1fn", "dint4"])
@pytest.mark.parametrize("granularity,axis,group_size", [("tensor", -1, None), ("channel", 0, None),
                                                         ("group", -1, 32)])
def test_pow2_scales(name, granularity, axis, group_size):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((8, 64)) * 3.7
    plain = quantize(x, name, granularity=granularity, axis=axis, group_size=group_size)
    qt = quantize(x, name, granularity=granularity, axis=axis, group_size=group_size, pow2_scale=True)
    mant, _ = np.frexp(qt.scale)
    assert np.all(mant == 0.5)  # exact powers of two
    assert np.all(qt.scale >= plain.scale) and np.all(qt.scale < 2 * plain.scale)
    spec = get_format(name)
    top = spec.hi if spec.kind == "int" else spec.max
    assert np.all(np.abs(x / qt.expand(qt.scale)) <= top)  # rounding the scale up never clips


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float6_e2m3fn", "dint4", "nf4"])
@pytest.mark.parametrize("granularity,axis,group_size", [("tensor", -1, None), ("channel", 1, None),
                                                         ("group", -1, 64), ("group", 0, 32)])
def test_float_dint_codebook_nearest(name, granularity, axis, group_size):
    spec = get_format(name)
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal((64, 128))
    qt = quantize(x, name, granularity=granularity, axis=axis, group_size=group_size)
    s = qt.expand(qt.scale)
    amax = np.zeros_like(x)
    for idx in _groups(x.shape, granularity, axis % 2, group_size):
        amax[idx] = np.max(np.abs(x[idx]))
    assert np.array_equal(s, amax / spec.max)
    scaled = x / s
    values = spec.values()
    finite = values[np.isfinite(values)]
    got = spec.decode(qt.codes)
    best = np.min(np.abs(scaled[..., None] - finite), axis=-1)
    assert np.all(np.abs(scaled - got) == best)  # the nearest representable value
    assert np.array_equal(dequantize(qt), got * s)
    # the group maximum maps to the format's maximum magnitude
    assert np.all(np.abs(got)[np.abs(x) == amax] == spec.max)


def test_zero_tensor_and_scalar_shapes():
    qt = quantize(np.zeros((4, 8)), "int8", granularity="channel", axis=0)
    assert np.all(qt.scale == 1.0) and np.all(dequantize(qt) == 0)
    qt = quantize(np.zeros(6), "float8_e4m3fn")
    assert np.all(dequantize(qt) == 0)
    qt = quantize(2.5, "int8")
    assert dequantize(qt).tolist() == [2.5]


def test_quantize_errors():
    x = np.ones((4, 100))
    with pytest.raises(ValueError, match=r"group_size must divide the length 100 of axis 1, not 32"):
        quantize(x, "int8", granularity="group", group_size=32)
    with pytest.raises(ValueError, match=r"group_size must be a positive integer for group granularity, not None"):
        quantize(x, "int8", granularity="group")
    with pytest.raises(ValueError, match=r"group_size must be a positive integer for group granularity, not 0"):
        quantize(x, "int8", granularity="group", group_size=0)
    with pytest.raises(ValueError, match=r"granularity must be one of tensor, channel, group, not 'block'"):
        quantize(x, "int8", granularity="block")
    with pytest.raises(ValueError, match=r"axis must lie in -2\.\.1 for a 2-D x, not 2"):
        quantize(x, "int8", granularity="channel", axis=2)
    with pytest.raises(ValueError, match=r"x must be finite to compute a scale"):
        quantize(np.array([1.0, np.nan]), "int8")
    with pytest.raises(ValueError, match=r"asymmetric quantization needs an integer format, not 'float8_e4m3fn'"):
        quantize(x, "float8_e4m3fn", symmetric=False)
    with pytest.raises(ValueError, match=r"unknown format name.*not 'int0'"):
        quantize(x, "int0")


@pytest.mark.parametrize("name", ["int8", "float8_e4m3fn"])
def test_pow2_scale_rounds_up_just_above_a_power_of_two(name):
    """Regression for core_bugs.md B10 (fixed in 8c3c144): every k, 0..5 ulps above 127 * 2**k / 448 * 2**k."""
    top = 127.0 if name == "int8" else 448.0
    for k in range(-20, 20):
        amax = top * 2.0**k
        for _ in range(6):
            x = np.array([amax, -1e-3 * 2.0**k])
            plain = float(quantize(x, name).scale.flat[0])
            p2 = float(quantize(x, name, pow2_scale=True).scale.flat[0])
            assert np.frexp(p2)[0] == 0.5 and plain <= p2 < 2 * plain, (k, amax)
            amax = np.nextafter(amax, np.inf)
