"""Rotation (QuaRot): Hadamard constructions, the hadamard op (kernel + cost), float invariance, integer runs."""

import numpy as np
import pytest

from hwsim import hadamard
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.graph import Graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe
from hwsim.qspec import QTensor, QuantSpec


@pytest.mark.parametrize("n", [4, 12, 48, 144, 384, 576, 1536])
def test_hadamard_orders_are_hadamard_and_transform_matches(n):
    h = hadamard.matrix(n)
    assert (h @ h.T == n * np.eye(n, dtype=np.int64)).all()
    x = np.random.default_rng(n).integers(-128, 128, size=(3, n))
    assert (hadamard.transform_unscaled(x) == x @ h).all()
    with pytest.raises(ValueError, match="no Hadamard construction for order 20"):
        hadamard.factors(20)


def _tiny_llm(seed=0, d=48, f=96, vocab=40, outlier=None, gain=30.0) -> Graph:
    """embedding -> rmsnorm -> fc1 -> silu -> fc2 (+ residual) -> rmsnorm -> tied head."""
    rng = np.random.default_rng(seed)
    g = Graph("tiny-llm")
    g.meta["family"] = "llm"
    g.add_tensor("ids", (1, 8), dtype="int64")
    shapes = {"emb": (d, vocab), "n0.g": (d,), "fc1.w": (d, f), "fc2.w": (f, d), "n1.g": (d,)}
    for name, shape in shapes.items():
        g.add_tensor(name, shape, is_weight=True)
        scale = 1.0 if name.endswith(".g") else 0.3
        g.weights[name] = (rng.normal(size=shape) * scale + (1.0 if name.endswith(".g") else 0)).astype(np.float32)
    if outlier is not None:
        g.weights["emb"][outlier] *= gain
    for name, shape in (("e", (1, 8, d)), ("h", (1, 8, d)), ("y1", (1, 8, f)), ("a", (1, 8, f)),
                        ("y2", (1, 8, d)), ("r", (1, 8, d)), ("z", (1, 8, d)), ("logits", (1, 8, vocab))):
        g.add_tensor(name, shape)
    g.add_op("embd", "embedding", ["ids", "emb"], ["e"], table_transposed=True)
    g.add_op("n0", "rmsnorm", ["e", "n0.g"], ["h"], eps=1e-6)
    g.add_op("fc1", "linear", ["h", "fc1.w"], ["y1"])
    g.add_op("act", "silu", ["y1"], ["a"])
    g.add_op("fc2", "linear", ["a", "fc2.w"], ["y2"])
    g.add_op("res", "add", ["y2", "e"], ["r"])
    g.add_op("n1", "rmsnorm", ["r", "n1.g"], ["z"], eps=1e-6)
    g.add_op("head", "linear", ["z", "emb"], ["logits"])
    g.inputs, g.outputs = ("ids",), ("logits",)
    return g.freeze()


def _feeds(n=2, seed=1):
    rng = np.random.default_rng(seed)
    return [{"ids": rng.integers(0, 40, size=(1, 8))} for _ in range(n)]


def test_residual_rotation_keeps_the_float_function_and_unties_the_head():
    g = _tiny_llm()
    r = apply_recipe(g, {"recipe": [{"rotation": {"online": ["fc2"]}}]})
    assert r.op("head").inputs[1] == "head.weight" and "fc2.hadamard" in [o.name for o in r.ops]
    assert np.allclose(r.weights["n0.g"], 1.0) and not np.allclose(r.weights["emb"], g.weights["emb"])
    for feeds in _feeds():
        a = run_graph(g, feeds, FloatBackend())["logits"]
        b = run_graph(r, feeds, FloatBackend())["logits"]
        assert np.abs(a - b).max() < 1e-4 * np.abs(a).max()
    other = apply_recipe(g, {"recipe": [{"rotation": {"seed": 1}}]})
    assert not np.array_equal(other.weights["fc1.w"], r.weights["fc1.w"])  # the seed draws the signs


def test_rotation_spreads_a_planted_outlier_channel():
    g = _tiny_llm(outlier=5)
    r = apply_recipe(g, {"recipe": [{"rotation": {}}]})
    feeds = _feeds(1)[0]
    e0 = run_graph(g, feeds, FloatBackend(), keep=True)["e"]
    e1 = run_graph(r, feeds, FloatBackend(), keep=True)["e"]
    peak = lambda x: np.abs(x).max() / np.sqrt((x ** 2).mean())  # noqa: E731
    assert peak(e1) < 0.5 * peak(e0)


def test_rotated_w8a8_runs_integer_and_is_deterministic():
    g = _tiny_llm(outlier=5)
    recipe = {"recipe": [{"rotation": {"online": ["fc2"]}}, {"rtn": {"weights": "int8", "activations": "int8",
                                                     "act_granularity": "tensor", "residual_granularity": "tensor"}}]}
    calib = _feeds(3, seed=7)
    runs = []
    for _ in range(2):
        q = apply_recipe(g, recipe, calib)
        ex = IntegerExecutor(q)
        runs.append(ex.run(_feeds(1)[0])["logits"])
    assert np.array_equal(runs[0], runs[1])
    assert ex.numerics["fc2.hadamard"] == "float"  # SiLU output is float: the transform runs on reals
    assert ex.numerics["fc1"] == "integer"
    ref = run_graph(g, _feeds(1)[0], FloatBackend())["logits"]
    assert np.corrcoef(ref.ravel(), runs[0].ravel())[0, 1] > 0.95


def test_hadamard_kernel_on_codes_is_exact_integer_then_requant():
    from hwsim.qlinear import requant_accumulator

    g = Graph("h")
    g.add_tensor("x", (2, 12), quant=QuantSpec("int8", "tensor", scale=np.asarray(0.1)))
    g.add_tensor("y", (2, 12), quant=QuantSpec("int8", "tensor", scale=np.asarray(0.05)))
    g.add_op("rot", "hadamard", ["x"], ["y"])
    g.inputs, g.outputs = ("x",), ("y",)
    g.freeze()
    codes = np.random.default_rng(0).integers(-128, 128, size=(2, 12)).astype(np.int8)
    ex = IntegerExecutor(g)
    out = ex.run({"x": QTensor(codes, "int8", np.asarray(0.1), 0)}, keep=True)["y"]
    want = requant_accumulator(codes.astype(np.int64) @ hadamard.matrix(12), 0.1 / np.sqrt(12), g.tensors["y"].quant)
    assert ex.numerics["rot"] == "integer" and np.array_equal(out.codes, want.codes)


def test_hadamard_is_charged_its_factorised_adds():
    from hwsim.perf.graph_costs import workload_from_graph

    g = Graph("h")
    g.add_tensor("x", (4, 576))
    g.add_tensor("y", (4, 576))
    g.add_op("rot", "hadamard", ["x"], ["y"])
    ops = workload_from_graph(g.freeze()).ops
    assert len(ops) == 1 and ops[0].elements == 4 * 576 * (11 + 11 + 2)


def test_minilm_style_layernorm_graph_gets_online_rotations_and_refuses_residual():
    from tests.ptq.test_recipes import _batches, _mlp

    g = _mlp()
    r = apply_recipe(g, {"recipe": [{"rotation": {}}]})
    assert [o.kind for o in r.ops].count("hadamard") == 2
    x = _batches(1)[0]
    assert np.allclose(run_graph(g, x, FloatBackend())["out"], run_graph(r, x, FloatBackend())["out"], atol=1e-4)
    with pytest.raises(ValueError, match="residual rotation needs an RMSNorm graph"):
        apply_recipe(g, {"recipe": [{"rotation": {"residual": True}}]})


@pytest.mark.slow
def test_smollm2_two_layers_rotated_float_equals_original():
    from hwsim.models.run import nll, smollm2_task

    task = smollm2_task(chunks=1, tokens=32, layers=2, calib_chunks=1)
    r = apply_recipe(task.graph, {"recipe": [{"rotation": {}}]})
    feeds = task.evaluation[0]
    a, _ = nll(run_graph(task.graph, feeds, FloatBackend())[task.graph.outputs[0]], feeds["input_ids"])
    b, _ = nll(run_graph(r, feeds, FloatBackend())[r.outputs[0]], feeds["input_ids"])
    assert abs(a.mean() - b.mean()) < 1e-5
