"""AQAS: per-channel scales searched with weight and activation quantizers in the loop (dINT4 / INT4 W, int8 A)."""

import numpy as np
import pytest

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe
from tests.ptq.test_recipes import _batches, _mlp


@pytest.mark.parametrize("fmt", ["dint4", "dint4z", "int4"])
def test_aqas_beats_plain_rtn_on_a_planted_outlier_channel(fmt):
    g = _mlp(outlier=5)
    calib = _batches(4, seed=3)
    x = _batches(2, seed=9)
    refs = [run_graph(g, b, FloatBackend(), keep=True)["y1"] for b in x]
    rtn = {"rtn": {"weights": fmt, "granularity": "channel", "activations": "int8"}}

    def err(recipe):
        q = apply_recipe(g, {"recipe": recipe}, calib)
        outs = [IntegerExecutor(q).run(b, keep=True)["y1"] for b in x]
        assert np.array_equal(outs[0], IntegerExecutor(q).run(x[0], keep=True)["y1"])
        return sum(float(((np.asarray(_real(o)) - r) ** 2).sum()) for o, r in zip(outs, refs, strict=True))

    e_rtn = err([rtn])
    e_aqas = err([{"aqas": {"weights": fmt, "activations": "int8"}}, rtn])
    assert e_aqas < 0.7 * e_rtn


def _real(v):
    return v.real() if hasattr(v, "fixed") else v
