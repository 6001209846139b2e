"""Integer LayerNorm / RMSNorm golden model vs float, and vanilla vs ORI-LN on outlier channels."""

import math

import numpy as np
import pytest

from hwsim.layernorm import (
    IntNormSpec,
    calibrate_norm,
    float_norm,
    integer_norm,
    isqrt_newton,
    norm_op_counts,
    rshift_round,
)


def test_isqrt_newton_exact_floor():
    rng = np.random.default_rng(1)
    n = np.concatenate([np.arange(0, 2000), rng.integers(0, 2**46, 5000)]).astype(np.int64)
    root, iters = isqrt_newton(n)
    assert np.array_equal(root, np.array([math.isqrt(int(v)) for v in n]))
    assert 0 < iters < 40


def test_rshift_round_half_away():
    assert list(rshift_round(np.array([5, -5, 6, -6, 7, -7]), 1)) == [3, -3, 3, -3, 4, -4]


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_integer_norm_within_documented_bound(kind):
    rng = np.random.default_rng(2)
    n = 384
    x = rng.normal(0.3, 1.0, (32, n))
    gamma, beta = rng.normal(1, 0.3, n), (rng.normal(0, 0.2, n) if kind == "layernorm" else None)
    s_in = np.abs(x).max() / 2**20  # 21-bit residual accumulator, pre-shift needed
    q = np.round(x / s_in).astype(np.int64)
    y_float = float_norm(q * s_in, kind, gamma, beta)
    s_out = np.abs(y_float).max() / 127
    p = calibrate_norm(kind, gamma, beta, in_absmax=np.abs(q).max(), out_scale=s_out)
    stats = {}
    y = integer_norm(q, p, stats=stats)
    assert p.pre_shift > 0 and stats["x_saturated"] == 0 and stats["newton_iterations"] > 0
    err = np.abs(y * s_out - y_float) / s_out
    # documented bound: 0.51 LSB + |gamma|/s_out * (2^-13 + |z|/sigma + sqrt(N) 2^(p-1)/sigma_x)
    x_int = np.round(q / 2**p.pre_shift)
    sigma_x = x_int.std(axis=-1, keepdims=True) if kind == "layernorm" else np.sqrt((x_int**2).mean(-1, keepdims=True))
    sigma = sigma_x * math.sqrt(n)
    z = np.abs(y_float - (0 if beta is None else beta)) / np.abs(gamma)
    bound = 0.51 + np.abs(gamma) / s_out * (2.0**-13 + z / sigma + math.sqrt(n) * 2.0 ** (p.pre_shift - 1) / sigma_x)
    assert np.all(err <= bound)
    assert err.max() > 0.4  # the output rounding is really there


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_ori_ln_beats_vanilla_on_outlier_channels(kind):
    rng = np.random.default_rng(3)
    n = 256
    x = rng.normal(0, 1, (64, n))
    outliers = [7, 100, 201]
    x[:, outliers] *= 60.0  # LLM-style massive channels
    gamma, beta = rng.normal(1, 0.1, n), (rng.normal(0, 0.1, n) if kind == "layernorm" else None)
    y_float = float_norm(x, kind, gamma, beta)
    s_out = np.abs(y_float).max() / 32767  # int16 output: isolate the input quantization
    # vanilla: static per-tensor int8 of x
    s8 = np.abs(x).max() / 127
    vanilla = integer_norm(np.clip(np.round(x / s8), -127, 127).astype(np.int64),
                           calibrate_norm(kind, gamma, beta, in_absmax=127, out_scale=s_out, out_format="int16"))
    # ORI-LN: per-channel lambda from the outlier-mitigation scales, x/lambda static per-tensor int8
    amax_c = np.abs(x).max(axis=0)
    lam = np.maximum(1.0, amax_c / np.median(amax_c))
    s8 = np.abs(x / lam).max() / 127
    ori = integer_norm(np.clip(np.round(x / lam / s8), -127, 127).astype(np.int64),
                       calibrate_norm(kind, gamma, beta, in_absmax=127, out_scale=s_out, lam=lam,
                                      out_format="int16"))
    normal = np.setdiff1d(np.arange(n), outliers)

    def rel(y):
        return np.linalg.norm((y * s_out - y_float)[:, normal]) / np.linalg.norm(y_float[:, normal])

    print(kind, "relative error on normal channels: vanilla", rel(vanilla), "ORI-LN", rel(ori))
    assert rel(ori) < 0.02 and rel(vanilla) > 0.2


def test_cost_exports():
    c = norm_op_counts(384, "layernorm", newton_iterations=5)
    r = norm_op_counts(384, "rmsnorm", newton_iterations=5)
    assert c["mult"] == r["mult"] == 3 * 384 and c["add"] > r["add"] and c["div"] == r["div"] + 1
    assert norm_op_counts(384, "rmsnorm", ori=True)["mult"] == 4 * 384
    spec = IntNormSpec(lanes=16, div_latency=10, newton_iterations=5, pipeline=4)
    assert spec.latency(384) == 3 * 24 + 7 * 10 + 4
    assert spec.latency(384, "rmsnorm") == 2 * 24 + 6 * 10 + 4
    with pytest.raises(ValueError, match="not 'batchnorm'"):
        norm_op_counts(4, "batchnorm")


@pytest.mark.parametrize("out_format, zero_point", [("int8", 0), ("uint8", 128), ("int4", 0), ("float8_e4m3fn", 0)])
def test_stage8_equals_the_requant_unit_on_every_int16_input(out_format, zero_point):
    """Stage 8 is read from a table: it must be the requant of every int16 value (saturation included)."""
    from hwsim.layernorm import _stage8_table
    from hwsim.requant import quantize_multiplier, requantize

    m, sh = quantize_multiplier(0.37 / 127.0)
    t = np.arange(-32768, 32768, dtype=np.int64)
    want = requantize(t, m, sh, zero_point, out_format=out_format)
    got = _stage8_table(int(m), int(sh), zero_point, out_format, "gemmlowp")[t + 32768]
    assert got.dtype == want.dtype and np.array_equal(got, want)
