"""PFPQuant GOM: λ formulas, a planted outlier channel flattened, float invariance (ORI-LN), integer runs."""

import numpy as np
import pytest

from hwsim.calibration import calibrate
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe
from hwsim.ptq.gom import elae_lambda, mcom_lambda
from tests.ptq.test_rotation import _feeds, _tiny_llm


def test_lambda_formulas():
    m = np.array([0.5, 2.0, 6.0, 1000.0])
    assert np.allclose(elae_lambda(m, 1.0), np.maximum(m / np.log2(2 + m), 1))
    med = np.median(m)
    assert np.allclose(mcom_lambda(m, 0.5, 1.0), np.maximum(((1 + m) / np.log2(2 + med)) ** 0.5, 1))
    assert (elae_lambda(m, 1.0) >= 1).all() and elae_lambda([1000.0], 1.0)[0] == pytest.approx(1000 / np.log2(1002))


def _residual_llm():
    return _tiny_llm(outlier=5)  # embedding channel 5 x30: a planted outlier channel of the residual stream


@pytest.mark.parametrize("method", ["mcom", "elae"])
def test_gom_flattens_the_planted_outlier_and_keeps_the_float_function(method):
    g = _residual_llm()
    calib = _feeds(3, seed=7)
    q = apply_recipe(g, {"recipe": [{"gom": {"method": method}}]}, calib)
    assert q.op("n1").attrs["ori_lambda"][5] > 5.0  # the outlier channel is compressed
    s0, s1 = calibrate(g, calib, ["amax_channel"]), calibrate(q, calib, ["amax_channel"])
    ratio = lambda a: a.max() / np.median(a)  # noqa: E731
    assert ratio(s1.amax_channel["r"]) < 0.5 * ratio(s0.amax_channel["r"])
    for feeds in _feeds(2):
        a = run_graph(g, feeds, FloatBackend())["logits"]
        b = run_graph(q, feeds, FloatBackend())["logits"]
        assert np.abs(a - b).max() < 1e-4 * np.abs(a).max()


@pytest.mark.parametrize("method", ["mcom", "elae"])
def test_gom_with_static_int8_residual_beats_rtn_and_is_bit_exact(method):
    g = _tiny_llm(outlier=5, gain=300.0)
    calib = _feeds(4, seed=7)
    rtn = {"rtn": {"weights": "int8", "activations": "int8", "act_granularity": "tensor", "residual": "int8",
                   "residual_granularity": "tensor"}}
    feeds = _feeds(2, seed=11)
    ref = [run_graph(g, f, FloatBackend())["logits"] for f in feeds]

    def err(recipe):
        q = apply_recipe(g, {"recipe": recipe}, calib)
        outs = [IntegerExecutor(q).run(f)["logits"] for f in feeds]
        assert all(np.array_equal(a, IntegerExecutor(q).run(f)["logits"]) for a, f in zip(outs, feeds, strict=True))
        return sum(float(np.linalg.norm(o - r) / np.linalg.norm(r)) for o, r in zip(outs, ref, strict=True)), q

    e_rtn, _ = err([rtn])
    e_gom, q = err([{"gom": {"method": method}}, rtn])
    ex = IntegerExecutor(q)
    ex.run(feeds[0])
    assert ex.numerics["n1"] == "integer" and ex.numerics["res.gom_skip"] == "rescale"
    assert e_gom < 0.5 * e_rtn


def test_data_shifting_centres_the_norm_output_and_folds_into_the_bias():
    g = _residual_llm()
    calib = _feeds(3, seed=7)
    q = apply_recipe(g, {"recipe": [{"gom": {"shift": True}}]}, calib)
    assert q.op("n0").inputs[-1] == "n0.shift_beta" and q.op("fc1").inputs[-1] == "fc1.shift_bias"
    s0, st = calibrate(g, calib, ["minmax_channel"]), calibrate(q, calib, ["minmax_channel"])
    off = lambda s: np.abs(s.max_channel["h"] + s.min_channel["h"]).mean()  # noqa: E731
    assert off(st) < 0.5 * off(s0)
    a = run_graph(g, _feeds(1)[0], FloatBackend())["logits"]
    b = run_graph(q, _feeds(1)[0], FloatBackend())["logits"]
    assert np.abs(a - b).max() < 1e-4 * np.abs(a).max()


def test_shift_amounts_centre_and_stay_within_half_the_largest_half_range():
    from hwsim.ptq.gom import shift_amounts

    d = shift_amounts([-2.0, 0.0, 100.0], [2.0, 1.0, 102.0])
    assert list(d) == [0.0, -0.5, -1.0]  # A = 2: the far-off channel is limited to -A/2


def test_gom_on_a_post_ln_encoder_graph():
    from tests.ptq.test_recipes import _batches, _mlp

    g = _mlp(outlier=3)
    q = apply_recipe(g, {"recipe": [{"gom": {"method": "elae"}}, {"rtn": {}}]}, _batches())
    assert "ori_lambda" in q.op("ln1").attrs
    x = _batches(1, seed=5)[0]
    out = IntegerExecutor(q).run(x)["out"]
    ref = run_graph(g, x, FloatBackend())["out"]
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.99
