"""LLM.int8(): outlier columns split into a higher-precision side GEMM; both paths executed and priced."""

import numpy as np

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.graph import Graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe
from hwsim.ptq.llm_int8 import outlier_columns


def _two_linears(seed=0, k=64, n=48):
    """x (with planted outlier columns 3 and 17) -> fc1, fc2 (sharing x) -> add."""
    rng = np.random.default_rng(seed)
    g = Graph("outliers")
    g.meta["family"] = "llm"
    g.add_tensor("x", (2, 16, k))
    for name in ("w1", "w2"):
        g.add_tensor(name, (k, n), is_weight=True)
        g.weights[name] = (rng.normal(size=(k, n)) * 0.1).astype(np.float32)
    for name in ("y1", "y2", "y"):
        g.add_tensor(name, (2, 16, n))
    g.add_op("fc1", "linear", ["x", "w1"], ["y1"])
    g.add_op("fc2", "linear", ["x", "w2"], ["y2"])
    g.add_op("sum", "add", ["y1", "y2"], ["y"])
    g.inputs, g.outputs = ("x",), ("y",)
    return g.freeze()


def _x(seed):
    x = np.random.default_rng(seed).normal(size=(2, 16, 64))
    x[..., 3] *= 60.0
    x[..., 17] *= 25.0
    return {"x": x.astype(np.float32)}


RTN = {"rtn": {"weights": "int8", "activations": "int8", "act_granularity": "token",
               "residual_granularity": "token"}}
SIDE = [{"match": "*.outlier", "rtn": {"weights": "int16", "activations": "int16"}}]


def test_outlier_columns_threshold():
    assert list(outlier_columns([0.5, 7.0, 6.0, 100.0])) == [1, 3]


def test_split_keeps_the_float_function_and_shares_the_selects():
    g = _two_linears()
    q = apply_recipe(g, {"recipe": [{"llm_int8": {}}]}, [_x(1)])
    kinds = [o.kind for o in q.ops]
    assert kinds.count("select") == 2 and kinds.count("linear") == 4
    assert q.op("fc1.outlier").inputs[0] == "x.outliers" and q.op("x.outliers.select").attrs["index"] == (3, 17)
    a, b = run_graph(g, _x(2), FloatBackend())["y"], run_graph(q, _x(2), FloatBackend())["y"]
    assert np.allclose(a, b, atol=1e-4)


def test_int8_with_outlier_side_gemm_beats_plain_int8_and_is_deterministic():
    g = _two_linears()
    calib = [_x(1), _x(3)]
    ref = run_graph(g, _x(2), FloatBackend())["y"]

    def err(recipe):
        q = apply_recipe(g, recipe, calib)
        out = IntegerExecutor(q).run(_x(2))["y"]
        assert np.array_equal(out, IntegerExecutor(q).run(_x(2))["y"])
        return np.linalg.norm(out - ref) / np.linalg.norm(ref), q

    e_plain, _ = err({"recipe": [RTN]})
    e_split, q = err({"recipe": [{"llm_int8": {}}, RTN], "overrides": SIDE})
    ex = IntegerExecutor(q)
    ex.run(_x(2))
    assert ex.numerics["fc1"] == "integer" and ex.numerics["fc1.outlier"] == "integer"
    assert q.tensors["w1"].quant is None and q.tensors["fc1.outlier.weight"].quant.format == "int16"
    assert e_split < 0.5 * e_plain


def test_cost_model_charges_both_gemms():
    from hwsim.perf.graph_costs import workload_from_graph

    q = apply_recipe(_two_linears(), {"recipe": [{"llm_int8": {}}, RTN], "overrides": SIDE}, [_x(1)])
    gemms = {o.name: o for o in workload_from_graph(q).ops if hasattr(o, "k") and hasattr(o, "a_format")}
    assert gemms["fc1"].k == 62 and gemms["fc1.outlier"].k == 2
    assert gemms["fc1"].b_format == "int8" and gemms["fc1.outlier"].b_format == "int16"
