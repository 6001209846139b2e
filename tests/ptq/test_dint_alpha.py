"""dINT special value α searched per layer with activation quantization in the loop (planted better α)."""

import numpy as np
import pytest

from hwsim.errors import ConfigError
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.formats import get_format
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe, load_recipe
from hwsim.ptq.dint_alpha import best_alpha
from hwsim.qspec import QuantSpec, weight_spec
from tests.ptq.test_recipes import _batches, _mlp


def _planted(k: int, n: int, alpha: float, top: float, seed: int) -> np.ndarray:
    """Columns whose entries are ±alpha, 0 or ±1..±3 (units of s = 1/top) plus one absmax entry ±top."""
    rng = np.random.default_rng(seed)
    levels = np.array([-3, -2, -1, -alpha, 0, alpha, 1, 2, 3])
    w = rng.choice(levels, size=(k, n), p=[.05, .05, .1, .25, .1, .25, .1, .05, .05])
    w[rng.integers(0, k, size=n), np.arange(n)] = top
    return w * 0.01


@pytest.mark.parametrize("fmt, top, planted", [("dint4z", 6, 0.25), ("dint4z", 6, 0.75), ("dint4", 7, 0.25)])
def test_search_finds_the_planted_alpha(fmt, top, planted):
    w = _planted(64, 16, planted, top, seed=1)
    rows = np.random.default_rng(2).normal(size=(128, 64))
    a_spec = QuantSpec("int8", "tensor", scale=np.float64(np.abs(rows).max() / 127))
    spec, alpha = best_alpha(rows, a_spec, w, weight_spec(w, fmt, "channel"), [0.25, 0.375, 0.5, 0.625, 0.75])
    assert alpha == planted and get_format(spec.format).alpha == planted
    assert spec.format == (f"{fmt}_a{planted!r}" if planted != 0.5 else fmt)


def test_step_on_a_graph_lowers_the_layer_error_bit_exact_and_same_seed_same_numbers():
    g = _mlp().edit()
    g.set_weight("fc1.w", _planted(32, 64, 0.25, 6, seed=3).astype(np.float32))
    g = g.freeze()
    calib, x = _batches(4, seed=3), _batches(1, seed=9)[0]
    ref = run_graph(g, x, FloatBackend(), keep=True)["y1"]
    rtn = {"rtn": {"weights": "dint4z", "granularity": "channel", "activations": "int8"}}

    def err(recipe):
        q = apply_recipe(g, {"recipe": recipe}, calib)
        y = IntegerExecutor(q).run(x, keep=True)["y1"]
        y2 = IntegerExecutor(q).run(x, keep=True)["y1"]
        y, y2 = (np.asarray(v.real() if hasattr(v, "fixed") else v) for v in (y, y2))
        assert np.array_equal(y, y2)
        return float(((y - ref) ** 2).sum()), q

    e_rtn, _ = err([rtn])
    e_alpha, q = err([rtn, {"dint_alpha": {}}])
    e_again, q2 = err([rtn, {"dint_alpha": {}}])
    assert q.meta["dint_alpha"]["fc1"] == 0.25 and q.tensors["fc1.w"].quant.format == "dint4z_a0.25"
    assert e_alpha < 0.5 * e_rtn and e_again == e_alpha and q2.meta["dint_alpha"] == q.meta["dint_alpha"]


def test_bad_alphas_name_the_key_path():
    with pytest.raises(ConfigError, match=r"recipe\[0\]\.dint_alpha\.alphas"):
        load_recipe({"recipe": [{"dint_alpha": {"alphas": [0.5, 1.5]}}]})
