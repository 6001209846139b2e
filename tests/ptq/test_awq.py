"""AWQ: salient channels protected (output error below RTN), folding keeps the float function, recipe use."""

import numpy as np
import pytest
from test_recipes import _batches, _mlp

from hwsim.errors import ConfigError
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe, load_recipe
from hwsim.ptq.awq import awq_scales, output_clip, search_alpha
from hwsim.ptq.gptq import output_error
from hwsim.ptq.weight_quantizer import WeightQuantizer
from hwsim.qspec import weight_spec, weight_values


def _salient(k=128, rows=2048, seed=0):
    """Inputs where 4 channels carry 20x larger magnitudes than the rest (the AWQ setting)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, k))
    x[:, [3, 40, 77, 100]] *= 20.0
    return x


@pytest.mark.parametrize("quantizer", [WeightQuantizer("int4"), WeightQuantizer("int3", "group", 32),
                                       WeightQuantizer("float4_e2m1fn", "group", 32)],
                         ids=lambda q: f"{q.fmt}-{q.granularity}")
def test_salient_channels_awq_below_rtn(quantizer):
    x = _salient()
    w = np.random.default_rng(1).normal(size=(128, 64)) * 0.05
    h = 2 * x.T @ x / len(x)
    alpha, s, errors = search_alpha([w], [quantizer], h, np.abs(x).mean(axis=0))
    assert 0.0 < alpha and errors[0] == pytest.approx(output_error(w, quantizer.dequantize(w), h))
    awq = weight_values(quantizer.spec(w * s[:, None])) / s[:, None]
    rtn = quantizer.dequantize(w)
    assert np.linalg.norm(x @ (w - awq)) < 0.8 * np.linalg.norm(x @ (w - rtn))
    # output clip search on top never increases the output error of the chosen scales
    ws = w * s[:, None]
    clipped = weight_spec(ws, quantizer.fmt, quantizer.granularity, quantizer.group_size,
                          clip_ratio=output_clip(ws, s, h, quantizer))
    assert output_error(w, weight_values(clipped) / s[:, None], h) <= output_error(w, awq, h) * (1 + 1e-12)


def test_scales_are_normalised_and_alpha_zero_is_identity():
    m = np.array([0.5, 2.0, 8.0])
    np.testing.assert_allclose(awq_scales(m, 0.0), 1.0)
    s = awq_scales(m, 1.0)
    assert s.max() * s.min() == pytest.approx(1.0)


def test_awq_folds_keep_the_float_function_and_run_bit_exact():
    g = _mlp(outlier=5)
    recipe = {"recipe": [{"awq": {"weights": "int4", "granularity": "group", "group_size": 16}}]}
    q = apply_recipe(g, recipe, _batches())
    folds = {name: e["fold"] for name, e in q.meta["awq"].items()}
    assert folds["fc1"] == "norm" and folds["fc2"] in ("mul", "alpha 0: not scaled")
    if folds["fc2"] == "mul":
        assert q.op("a.awq_scale").kind == "mul"
    f = _batches(1, seed=7)[0]
    np.testing.assert_allclose(run_graph(q, f, FloatBackend())["out"], run_graph(g, f, FloatBackend())["out"],
                               rtol=2e-4, atol=2e-4)
    for name, e in q.meta["awq"].items():
        assert e["error"] <= e["rtn_error"] * (1 + 1e-9), name
    full = {"recipe": recipe["recipe"] + [{"rtn": {"weights": "keep", "activations": "int8"}}]}
    a = IntegerExecutor(apply_recipe(g, full, _batches())).run(f)["out"]
    b = IntegerExecutor(apply_recipe(g, full, _batches())).run(f)["out"]
    assert np.array_equal(a, b)


def test_awq_bad_parameters_name_key_paths():
    with pytest.raises(ConfigError) as err:
        load_recipe({"recipe": [{"awq": {"alpha_grid": [2], "unfoldable": "x", "clip": "max"}}]})
    for needle in ("recipe[0].awq.alpha_grid", "recipe[0].awq.unfoldable", "recipe[0].awq.clip"):
        assert needle in str(err.value)


@pytest.mark.slow
def test_awq_on_minilm_layer_folds_into_norm_value_and_mul():
    from hwsim.models.run import minilm_task

    task = minilm_task(sentences=2, calib_sentences=8, layers=1)
    q = apply_recipe(task.graph, {"recipe": [{"awq": {"weights": "int4", "clip": "output"}}]}, task.calibration)
    report = q.meta["awq"]
    assert len(report) == 6
    for name, e in report.items():
        assert e["error"] <= e["rtn_error"] * (1 + 1e-9), name
    f = task.evaluation[0]
    ref = run_graph(task.graph, f, FloatBackend())["pooled"]
    np.testing.assert_allclose(run_graph(q, f, FloatBackend())["pooled"], ref, rtol=1e-3, atol=1e-4)
