"""GPTQ: exact RTN limit, lower layer output error than RTN on correlated inputs, every format, recipe use."""

import numpy as np
import pytest
from test_recipes import _batches, _mlp

from hwsim.errors import ConfigError
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe, load_recipe
from hwsim.ptq.gptq import gptq_quantize, output_error
from hwsim.ptq.weight_quantizer import WeightQuantizer
from hwsim.qspec import weight_values

QUANTIZERS = [WeightQuantizer("int4"), WeightQuantizer("uint4", "group", 32, symmetric=False),
              WeightQuantizer("int3", "group", 64), WeightQuantizer("dint4"),
              WeightQuantizer("float4_e2m1fn", "group", 32), WeightQuantizer("nf4", "group", 64),
              WeightQuantizer("mxfp4"), WeightQuantizer("int4", clip="mse")]


def _correlated(k=128, rows=1024, seed=0):
    """Inputs with strongly correlated channels (a random mixing plus a little noise)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(k, k)) / np.sqrt(k)
    return rng.normal(size=(rows, k)) @ mix + 0.2 * rng.normal(size=(rows, k))


@pytest.mark.parametrize("quantizer", QUANTIZERS, ids=lambda q: f"{q.fmt}-{q.granularity}{q.group_size or ''}")
def test_identity_hessian_gives_round_to_nearest(quantizer):
    w = np.random.default_rng(1).normal(size=(128, 24)) * 0.05
    ref = quantizer.spec(w)
    for act_order in (True, False):
        spec = gptq_quantize(w, np.eye(128), quantizer, act_order=act_order, block_size=32)
        assert np.array_equal(spec.codes, ref.codes)
        np.testing.assert_array_equal(spec.scale, ref.scale)


@pytest.mark.parametrize("quantizer", QUANTIZERS, ids=lambda q: f"{q.fmt}-{q.granularity}{q.group_size or ''}")
def test_correlated_input_layer_error_below_rtn(quantizer):
    x = _correlated()
    w = np.random.default_rng(2).normal(size=(128, 48)) * 0.05
    h = 2 * x.T @ x / len(x)
    rtn = np.linalg.norm(x @ w - x @ quantizer.dequantize(w))
    for act_order, static in ((True, False), (False, False), (False, True)):
        spec = gptq_quantize(w, h, quantizer, act_order=act_order, static_groups=static, block_size=32)
        gptq = np.linalg.norm(x @ w - x @ weight_values(spec))
        assert gptq < 0.85 * rtn, (act_order, static, gptq, rtn)
        assert output_error(w, weight_values(spec), h) == pytest.approx(2 * gptq**2 / len(x), rel=1e-9)


def test_block_size_does_not_change_the_result():
    x = _correlated(k=96)
    w = np.random.default_rng(3).normal(size=(96, 16))
    h = 2 * x.T @ x / len(x)
    a = gptq_quantize(w, h, WeightQuantizer("int4"), block_size=96)
    b = gptq_quantize(w, h, WeightQuantizer("int4"), block_size=16)
    # lazy batching only regroups the same updates: identical up to float summation order
    assert np.mean(a.codes != b.codes) < 0.01


def test_dead_inputs_and_singular_hessians():
    x = _correlated(k=64, rows=32)  # rows < K: XᵀX is singular, dampening makes it invertible
    x[:, 5] = 0.0  # a dead input channel
    w = np.random.default_rng(4).normal(size=(64, 8))
    spec = gptq_quantize(w, 2 * x.T @ x / len(x), WeightQuantizer("int8"))
    assert np.all(weight_values(spec)[5] == 0.0)


def test_too_few_calibration_rows_overfit_the_calibration_set():
    """rows < K: GPTQ fits the calibration rows and loses its edge on other rows; rows >> K: it keeps it.

    The failure mode behind SmolLM2 W3 g192 with 512 calibration tokens (README, study (b))."""
    quantizer = WeightQuantizer("int3", "group", 64)
    rng = np.random.default_rng(5)
    w = rng.normal(size=(128, 48)) * 0.05
    mix = rng.normal(size=(128, 128)) / np.sqrt(128)  # one input distribution, disjoint samples

    def sample(rows):
        return rng.normal(size=(rows, 128)) @ mix + 0.2 * rng.normal(size=(rows, 128))

    held_out = sample(4096)
    rtn_held = np.linalg.norm(held_out @ (w - quantizer.dequantize(w)))
    ratios = {}
    for rows in (64, 2048):
        x = sample(rows)
        wq = weight_values(gptq_quantize(w, 2 * x.T @ x / rows, quantizer))
        calib = np.linalg.norm(x @ (w - wq)) / np.linalg.norm(x @ (w - quantizer.dequantize(w)))
        ratios[rows] = (calib, np.linalg.norm(held_out @ (w - wq)) / rtn_held)
    (fit_small, held_small), (fit_big, held_big) = ratios[64], ratios[2048]
    assert fit_small < 0.6 and held_small > 1.1, ratios  # fits calibration, worse than RTN elsewhere
    assert held_big < 0.85 and held_big < 1.2 * fit_big, ratios  # generalises


def test_gptq_recipe_runs_bit_exact_and_reports_errors():
    recipe = {"recipe": [{"gptq": {"weights": "int4", "granularity": "group", "group_size": 16}},
                         {"rtn": {"weights": "keep", "activations": "int8"}}]}
    q = apply_recipe(_mlp(), recipe, _batches())
    assert q.tensors["fc1.w"].quant.describe() == "int4/group16"
    rows = sum(b["x"].reshape(-1, b["x"].shape[-1]).shape[0] for b in _batches())
    for name, e in q.meta["gptq"].items():
        assert e["error"] <= e["rtn_error"], name
        assert e["rows"] == rows, name
    f = _batches(1, seed=9)[0]
    out = IntegerExecutor(q).run(f)["out"]
    again = IntegerExecutor(apply_recipe(_mlp(), recipe, _batches())).run(f)["out"]
    assert np.array_equal(out, again)


def test_gptq_bad_parameters_name_key_paths():
    with pytest.raises(ConfigError) as err:
        load_recipe({"recipe": [{"gptq": {"weights": "int4x", "damp": 2, "act_order": "yes", "block_size": 0}}]})
    for needle in ("recipe[0].gptq.weights", "recipe[0].gptq.damp", "recipe[0].gptq.act_order",
                   "recipe[0].gptq.block_size"):
        assert needle in str(err.value)
    with pytest.raises(ValueError, match="group_size 24 does not divide K = 32"):
        apply_recipe(_mlp(), {"recipe": [{"gptq": {"granularity": "group", "group_size": 24}}]}, _batches())


@pytest.mark.slow
def test_gptq_never_worse_than_rtn_on_minilm_linears():
    """The issue's invariant: on every linear of a 1-layer MiniLM, GPTQ's output error <= RTN's."""
    from hwsim.models.run import minilm_task

    task = minilm_task(sentences=2, calib_sentences=8, layers=1)
    for fmt, gran, gs in (("int4", "channel", None), ("int3", "group", 128)):
        q = apply_recipe(task.graph, {"recipe": [{"gptq": {"weights": fmt, "granularity": gran,
                                                             "group_size": gs}}]}, task.calibration)
        report = q.meta["gptq"]
        assert len(report) == 6
        for name, e in report.items():
            assert e["error"] <= e["rtn_error"], (fmt, name, e)
