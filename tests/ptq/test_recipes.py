"""Recipe interface: YAML validation, composition, overrides, calibration statistics, RTN and SmoothQuant."""

import numpy as np
import pytest

from hwsim.calibration import calibrate
from hwsim.errors import ConfigError
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.graph import FrozenGraphError, Graph
from hwsim.int_executor import KERNELS, IntegerExecutor
from hwsim.ptq import apply_recipe, load_recipe, preset_names
from hwsim.ptq.rtn import _mse_clip
from hwsim.qspec import weight_spec, weight_values


def _mlp(seed=0, outlier=None) -> Graph:
    """x -> layernorm -> fc1 -> gelu -> fc2 (+ x residual) -> layernorm: a small post-LN block."""
    rng = np.random.default_rng(seed)
    g = Graph("mlp")
    d, f = 32, 64
    g.add_tensor("x", (4, 8, d))
    for name, shape in (("ln0.g", (d,)), ("ln0.b", (d,)), ("fc1.w", (d, f)), ("fc1.b", (f,)),
                        ("fc2.w", (f, d)), ("fc2.b", (d,)), ("ln1.g", (d,)), ("ln1.b", (d,))):
        g.add_tensor(name, shape, is_weight=True)
        g.weights[name] = (rng.normal(size=shape) * (0.2 if name.endswith(".w") else 1.0)).astype(np.float32)
    if outlier is not None:
        g.weights["ln0.g"][outlier] = 40.0  # a planted outlier channel of the norm output
    for name in ("h", "y1", "a", "y2", "r", "out"):
        g.add_tensor(name, (4, 8, f if name in ("y1", "a") else d))
    g.add_op("ln0", "layernorm", ["x", "ln0.g", "ln0.b"], ["h"], eps=1e-12)
    g.add_op("fc1", "linear", ["h", "fc1.w", "fc1.b"], ["y1"])
    g.add_op("act", "gelu", ["y1"], ["a"])
    g.add_op("fc2", "linear", ["a", "fc2.w", "fc2.b"], ["y2"])
    g.add_op("res", "add", ["y2", "h"], ["r"])
    g.add_op("ln1", "layernorm", ["r", "ln1.g", "ln1.b"], ["out"], eps=1e-12)
    g.inputs, g.outputs = ("x",), ("out",)
    return g.freeze()


def _batches(n=3, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(4, 8, 32)).astype(np.float32)} for _ in range(n)]


def test_frozen_graph_is_immutable_and_edit_copies():
    g = _mlp()
    with pytest.raises(FrozenGraphError):
        g.add_op("x2", "gelu", ["h"], ["a"])
    with pytest.raises(ValueError):
        g.weights["fc1.w"][0, 0] = 1.0  # read-only arrays
    e = g.edit()
    e.set_quant("fc1.w", weight_spec(np.asarray(g.weights["fc1.w"]), "int8"))
    assert e.tensors["fc1.w"].quant is not None and g.tensors["fc1.w"].quant is None


def test_every_graph_op_kind_has_a_kernel():
    from hwsim.graph import OP_KINDS

    assert OP_KINDS - KERNELS == {"conv"}  # conv: perf-only (SCALE-Sim topologies), no numerics


def test_presets_load_and_bad_recipes_name_key_paths(tmp_path):
    assert {"w8a8", "fp8", "w4a8-g32", "mixed-int4-ffn", "q4_1-a8"} <= set(preset_names())
    assert load_recipe("w8a8").steps[0].name == "smoothquant"
    bad = {"recipe": [{"rtn": {"weights": "int3x", "granularity": "group"}}, {"gptqq": {}},
                      {"smoothquant": {"alpha": 2}}],
           "overrides": [{"match": "fc*", "smoothquant": {"alpah": 0.3}}]}
    with pytest.raises(ConfigError) as err:
        load_recipe(bad)
    text = str(err.value)
    for needle in ("recipe[0].rtn.weights", "recipe[0].rtn.group_size", "recipe[1].gptqq: unknown recipe step",
                   "recipe[2].smoothquant.alpha", "overrides[0].smoothquant.alpah"):
        assert needle in text
    with pytest.raises(ValueError, match="recipe must be a preset"):
        load_recipe("w3a3")
    path = tmp_path / "r.yaml"
    path.write_text("recipe:\n  - rtn: {weights: int4, granularity: group, group_size: 16}\n")
    assert load_recipe(str(path)).name == "r"


def test_overrides_give_mixed_precision_specs():
    int4 = {"weights": "int4", "granularity": "group", "group_size": 16}
    r = load_recipe({"recipe": [{"rtn": {"weights": "int8", "activations": "int8"}}],
                     "overrides": [{"match": "fc2", "rtn": int4}]})
    q = apply_recipe(_mlp(), r, _batches())
    assert q.tensors["fc1.w"].quant.describe() == "int8/channel"
    assert q.tensors["fc2.w"].quant.describe() == "int4/group16"
    assert q.tensors["h"].quant.format == "int16" and q.op("ln0.requant").kind == "requant"
    assert q.tensors["a"].quant.format == "uint8"  # GELU output: asymmetric unsigned
    assert q.tensors["y1"].quant is None  # fc1 feeds a float GELU: float epilogue


def test_apply_recipe_does_not_touch_its_input():
    g = _mlp()
    before = {k: np.array(v) for k, v in g.weights.items()}
    apply_recipe(g, "w8a8", _batches())
    assert all(np.array_equal(before[k], g.weights[k]) for k in before)
    assert all(t.quant is None for t in g.tensors.values())


def test_smoothquant_keeps_the_float_function_and_flattens_an_outlier():
    g = _mlp(outlier=5)
    smoothed = apply_recipe(g, {"recipe": [{"smoothquant": {"alpha": 0.5}}]}, _batches())
    f = _batches(1, seed=7)[0]
    ref = run_graph(g, f, FloatBackend())["out"]
    out = run_graph(smoothed, f, FloatBackend())["out"]
    np.testing.assert_allclose(out, ref, rtol=2e-4, atol=2e-4)
    before = calibrate(g, _batches(), ["amax_channel"]).amax_channel["h"]
    after = calibrate(smoothed, _batches(), ["amax_channel"]).amax_channel["h"]
    assert before.max() / np.median(before) > 5 * (after.max() / np.median(after))
    # and the integer W8A8 output error drops with it
    errs = []
    for recipe in ({"recipe": [{"rtn": {}}]}, {"recipe": [{"smoothquant": {"alpha": 0.5}}, {"rtn": {}}]}):
        q = apply_recipe(g, recipe, _batches())
        errs.append(np.linalg.norm(IntegerExecutor(q).run(f)["out"] - ref))
    assert errs[1] < errs[0]


def test_mse_clip_never_worse_than_minmax():
    rng = np.random.default_rng(3)
    w = rng.standard_t(3, size=(64, 16))
    for gran, gs in (("channel", None), ("group", 16)):
        base = weight_values(weight_spec(w, "int4", gran, gs)) - w
        clipped = weight_values(weight_spec(w, "int4", gran, gs, clip_ratio=_mse_clip(w, "int4", gran, gs, True))) - w
        assert (clipped**2).sum() <= (base**2).sum()
        assert (clipped**2).sum(axis=0).max() <= (base**2).sum(axis=0).max() + 1e-12


def test_calibration_streams_xtx_and_percentiles():
    g = _mlp()
    batches = _batches(3)
    st = calibrate(g, batches, ["xtx", "percentile", "amax", "absmean_channel"])
    hs = [np.asarray(run_graph(g, b, FloatBackend(), keep=True)["h"], np.float64).reshape(-1, 32) for b in batches]
    x = np.concatenate(hs)
    np.testing.assert_allclose(st.xtx["h"], x.T @ x, rtol=1e-10)
    np.testing.assert_allclose(st.hessian("h"), 2 * x.T @ x / len(x), rtol=1e-10)
    np.testing.assert_allclose(st.absmean_channel("h"), np.abs(x).mean(axis=0), rtol=1e-10)
    assert st.percentile("h", 100) == pytest.approx(st.amax["h"])
    with pytest.raises(ValueError, match="has no 'minmax' calibration statistics"):
        st.require("h", "minmax")


def test_integer_execution_is_deterministic_and_names_float_ops():
    q = apply_recipe(_mlp(), "w8a8", _batches())
    f = _batches(1, seed=9)[0]
    ex = IntegerExecutor(q)
    a, b = ex.run(f)["out"], IntegerExecutor(q).run(f)["out"]
    assert np.array_equal(a, b)
    assert ex.numerics["fc1"] == "integer" and ex.numerics["act"] == "float"
    assert ex.numerics["ln0"] == "integer" and ex.numerics["ln0.requant"] == "integer"


def test_readme_recipe_step_example_runs():
    """The README's 'Adding a recipe step' example, executed as written."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = text.index("**Adding a recipe step**")
    code = text[text.index("```python", start) + len("```python"):text.index("```", text.index("```python", start) + 9)]
    exec(compile(code, "README.md", "exec"), {})
    q = apply_recipe(_mlp(), {"recipe": [{"half_range_rtn": {"weights": "int4"}},
                                         {"rtn": {"weights": "keep", "activations": "int8"}}]}, _batches())
    assert q.tensors["fc1.w"].quant.describe() == "int4/channel"
    with pytest.raises(ConfigError, match=r"recipe\[0\].half_range_rtn.weights"):
        load_recipe({"recipe": [{"half_range_rtn": {"weights": "fp8"}}]})


def test_smoothquant_unties_a_tied_lm_head():
    """An embedding table read again by the lm_head (tied weights): smoothing the head must not rescale the
    embedding. The smoothed graph computes the same function; the head reads its own copy."""
    rng = np.random.default_rng(5)
    g = Graph("tied")
    g.add_tensor("ids", (1, 6), dtype="int64")
    g.add_tensor("E", (16, 40), is_weight=True)
    g.weights["E"] = rng.normal(size=(16, 40)).astype(np.float32)
    g.add_tensor("gamma", (16,), is_weight=True)
    g.weights["gamma"] = (rng.uniform(0.5, 2, size=16) * np.where(np.arange(16) == 3, 30, 1)).astype(np.float32)
    for name, shape in (("x", (1, 6, 16)), ("h", (1, 6, 16)), ("logits", (1, 6, 40))):
        g.add_tensor(name, shape)
    g.add_op("embed", "embedding", ["ids", "E"], ["x"], table_transposed=True)
    g.add_op("norm", "rmsnorm", ["x", "gamma"], ["h"], eps=1e-5)
    g.add_op("head", "linear", ["h", "E"], ["logits"])
    g.inputs, g.outputs = ("ids",), ("logits",)
    g.freeze()
    feeds = [{"ids": rng.integers(0, 40, size=(1, 6))} for _ in range(2)]
    s = apply_recipe(g, {"recipe": [{"smoothquant": {"alpha": 0.5}}]}, feeds)
    assert s.op("head").inputs[1] != "E" and np.array_equal(s.weights["E"], g.weights["E"])
    np.testing.assert_allclose(run_graph(s, feeds[0], FloatBackend())["logits"],
                               run_graph(g, feeds[0], FloatBackend())["logits"], rtol=1e-4, atol=1e-4)
