"""The quantile data type (k-bit scaling laws): fitted levels, nearest-level rounding, names, exact GEMM."""

from __future__ import annotations

import statistics
from fractions import Fraction

import numpy as np
import pytest

from hwsim import gemm, get_format
from hwsim.formats import _RESOLVED
from hwsim.qlinear import quantized_linear
from hwsim.qspec import QTensor, weight_spec, weight_values
from hwsim.quantile import block_normalized, quantile_codebook, resolve


def test_levels_are_the_equal_probability_quantiles_of_a_normal_sample():
    """Per tensor, on a large normal sample: level_i ∝ Φ⁻¹((i + 1/2) / 16), normalised to max 1."""
    w = np.random.default_rng(0).normal(size=(400, 500))
    spec = weight_spec(w, "quantile4", "tensor")
    levels = get_format(spec.format).values()
    phi = np.array([statistics.NormalDist().inv_cdf((i + 0.5) / 16) for i in range(16)])
    np.testing.assert_allclose(levels, phi / phi.max(), atol=0.01)
    assert levels[-1] == 1.0 and levels[0] == -1.0


def test_inner_codes_take_equal_shares_of_a_uniform_tensor():
    """Uniform data on [-1, 1]: levels (2i + 1)/16 − 1 (times 16/15); with round-to-nearest the 14 inner
    codes take equal shares and the two end codes (stretched onto ±1) half a share each."""
    u = np.linspace(-1.0, 1.0, 16 * 1001)
    levels = np.array(quantile_codebook(u, 4))
    np.testing.assert_allclose(levels, ((2 * np.arange(16) + 1) / 16 - 1) * 16 / 15, atol=1e-6)
    spec = weight_spec(u.reshape(-1, 1), "quantile4", "channel")
    counts = np.bincount(spec.codes.ravel(), minlength=16)
    share = u.size / 15
    assert np.all(np.abs(counts[1:-1] - share) <= 0.01 * share)
    assert np.all(np.abs(counts[[0, -1]] - share / 2) <= 0.01 * share)


def test_blocks_are_normalised_by_their_absmax_before_fitting():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(64, 8)) * np.array([0.01, 0.1, 1, 10, 100, 1, 1, 1])
    u = block_normalized(w, "group", 32)
    assert np.allclose(np.abs(u).reshape(2, 32, 8).max(axis=1), 1.0)
    # column scales do not change the fitted codebook: it is fitted to the normalised blocks
    a = weight_spec(w, "quantile3", "group", 32).format
    b = weight_spec(w / np.array([0.01, 0.1, 1, 10, 100, 1, 1, 1]), "quantile3", "group", 32).format
    assert a == b


def test_round_to_nearest_level_and_absmax_is_exact():
    rng = np.random.default_rng(2)
    w = rng.laplace(size=(96, 12))
    spec = weight_spec(w, "quantile4", "group", 32)
    fmt = get_format(spec.format)
    levels = fmt.values()
    u = w / np.repeat(np.asarray(spec.scale), 32, axis=0)
    best = np.abs(u[..., None] - levels).min(axis=-1)
    got = np.abs(u - levels[spec.codes.astype(int)])
    assert np.array_equal(got, best)  # every weight took a nearest level
    amax_pos = np.argmax(np.abs(w).reshape(3, 32, 12), axis=1)
    for gi in range(3):
        rows = gi * 32 + amax_pos[gi]
        np.testing.assert_allclose(weight_values(spec)[rows, np.arange(12)], w[rows, np.arange(12)], rtol=1e-6)


def test_codebook_names_carry_the_levels_and_resolve_anywhere():
    w = np.random.default_rng(3).normal(size=(64, 4))
    name = weight_spec(w, "quantile4", "channel").format
    assert name.startswith("quantile4:") and len(name) == len("quantile4:") + 128
    _RESOLVED.pop(name, None)  # as in a fresh process: rebuilt from the name alone
    rebuilt = resolve(name)
    assert rebuilt.kind == "codebook" and get_format(name).table == rebuilt.table
    assert resolve("quantile4:zz") is None and resolve("quantile9") is None
    with pytest.raises(ValueError, match="unknown format name"):
        get_format("quantile4:12")
    assert get_format("quantile4").kind == "quantile" and get_format("quantile3").bits == 3


def test_gemm_on_the_fitted_codebook_is_exact():
    """The integer executor's GEMM multiplies the codebook levels' exact fixed-point view (Fractions)."""
    rng = np.random.default_rng(4)
    w = rng.standard_t(3, size=(48, 5))
    spec = weight_spec(w, "quantile4", "channel")
    a = rng.integers(0, 256, size=(3, 48)).astype(np.uint8)
    levels = get_format(spec.format).values()
    av = [[Fraction(int(c) - 256 if c >= 128 else int(c)) for c in row] for row in a.tolist()]
    bv = [[Fraction(float(levels[c])) for c in col] for col in spec.codes.T.tolist()]
    ref = np.array([[float(sum(x * y for x, y in zip(r, c, strict=True))) for c in bv] for r in av])
    assert np.array_equal(gemm(a, "int8", spec.codes, spec.format), ref)
    out = quantized_linear(QTensor(a, "int8", np.float64(0.5)), spec, None, None)
    assert np.array_equal(out, ref * 0.5 * np.asarray(spec.scale))


def test_recipe_with_quantile_weights_runs_bit_exact_and_deterministic():
    from hwsim.int_executor import IntegerExecutor
    from hwsim.ptq import apply_recipe
    from tests.ptq.test_recipes import _batches, _mlp

    recipe = {"recipe": [{"rtn": {"weights": "quantile4", "granularity": "group", "group_size": 32,
                                  "activations": "int8"}}]}
    g = _mlp()
    q1, q2 = (apply_recipe(g, recipe, _batches(2)) for _ in range(2))
    spec = q1.tensors["fc1.w"].quant
    assert spec.format.startswith("quantile4:") and spec.format == q2.tensors["fc1.w"].quant.format
    x = _batches(1, seed=7)[0]
    ex = IntegerExecutor(q1)
    o1, o2 = ex.run(x), IntegerExecutor(q2).run(x)
    assert all(np.array_equal(_real(o1[k]), _real(o2[k])) for k in o1)
    assert ex.numerics["fc1"] == "integer"


def _real(v):
    return v.real() if hasattr(v, "fixed") else np.asarray(v)
