"""FPQ: per-layer FP format and clipping-maximum search (output MSE, alternating rounds)."""

import numpy as np

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.formats import get_format
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe
from tests.ptq.test_llm_int8 import _two_linears, _x

RTN = {"rtn": {"weights": "float4_e2m1fn", "granularity": "channel", "activations": "float8_e4m3fn",
               "act_granularity": "tensor", "residual": None}}


def test_new_4bit_splits_are_derived_from_parameters():
    assert get_format("float4_e3m0").max == 16.0 and get_format("float4_e1m2").max == 3.5
    assert sorted(set(get_format("float4_e1m2").values()))[7:] == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]


def test_fpq_search_lowers_output_error_vs_fixed_format_and_is_deterministic():
    g = _two_linears()
    calib = [_x(s) for s in range(10, 14)]
    held_out = [_x(s) for s in (2, 3, 4)]
    refs = [run_graph(g, x, FloatBackend(), keep=True) for x in held_out]

    def run(recipe):  # FPQ's objective: each layer's output error (y1, y2), summed
        q = apply_recipe(g, {"recipe": recipe}, calib)
        err = 0.0
        for x, ref in zip(held_out, refs, strict=True):
            out = IntegerExecutor(q).run(x, keep=True)
            assert np.array_equal(out["y"], IntegerExecutor(q).run(x)["y"])
            err += sum(float(((np.asarray(out[t]) - ref[t]) ** 2).sum()) for t in ("y1", "y2"))
        return err, q

    e_rtn, _ = run([RTN])
    e_fpq, q = run([RTN, {"fpq": {}}])
    assert e_fpq < 0.9 * e_rtn
    assert q.tensors["x"].quant.granularity == "tensor"
    fmt = {q.tensors[n].quant.format for n in ("w1", "w2")}
    assert fmt <= {"float4_e2m1fn", "float4_e3m0", "float4_e1m2"}
