"""FPQ's pre-shifted per-channel exponent bias: a planted channel-range disparity is reduced, float unchanged."""

import numpy as np
import pytest

from hwsim.calibration import calibrate
from hwsim.errors import ConfigError
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe, load_recipe
from hwsim.ptq.fpq_shift import exponent_shifts
from tests.ptq.test_recipes import _batches, _mlp


def _disparate():
    """The test block with LayerNorm γ spanning 2^-6 .. 1: norm-output channel ranges differ by ~64x."""
    g = _mlp().edit()
    gamma = np.ldexp(1.0, -np.arange(32) % 7).astype(np.float32) * np.float32(1.3)
    g.set_weight("ln0.g", gamma)
    return g.freeze()


def _ranges(graph, batches):
    return np.asarray(calibrate(graph, batches, {"amax_channel"}).amax_channel["h"], np.float64)


def test_shifts_are_integer_powers_that_bring_channels_within_a_factor_two():
    amax = np.array([8.0, 4.0, 3.0, 1.0, 0.01, 0.0])
    rho = exponent_shifts(amax, 16)
    assert rho.tolist() == [0, -1, -1, -3, -9, -16]
    shifted = amax * np.ldexp(1.0, -rho)
    assert np.all(shifted[:5] <= 8.0) and np.all(shifted[:5] > 4.0)


def test_planted_disparity_is_reduced_and_the_float_model_is_unchanged():
    g, calib, x = _disparate(), _batches(4, seed=3), _batches(2, seed=9)
    before = _ranges(g, calib)
    assert before.max() / before.min() > 30
    shifted = apply_recipe(g, {"recipe": [{"fpq_shift": {}}]}, calib)
    after = _ranges(shifted, calib)
    assert after.max() / after.min() <= 2.0 and after.max() == pytest.approx(before.max(), rel=1e-6)
    for b in x:
        np.testing.assert_allclose(run_graph(shifted, b, FloatBackend())["out"], run_graph(g, b, FloatBackend())["out"],
                                   rtol=0, atol=1e-5)
        np.testing.assert_array_equal(run_graph(shifted, b, FloatBackend(), keep=True)["y1"],
                                      run_graph(g, b, FloatBackend(), keep=True)["y1"])
    assert len(shifted.meta["fpq_shift"]["ln0"]) == 32 and min(shifted.meta["fpq_shift"]["ln0"]) <= -5


def test_per_tensor_fp4_activations_lose_less_after_the_shift_same_seed_same_numbers():
    g, calib, x = _disparate(), _batches(4, seed=3), _batches(2, seed=9)
    rtn = {"rtn": {"weights": "float8_e4m3fn", "granularity": "channel", "activations": "float4_e2m1fn"}}
    refs = [run_graph(g, b, FloatBackend(), keep=True)["y1"] for b in x]

    def err(recipe):
        q = apply_recipe(g, {"recipe": recipe}, calib)
        outs = [IntegerExecutor(q).run(b, keep=True)["y1"] for b in x]
        outs = [np.asarray(o.real() if hasattr(o, "fixed") else o) for o in outs]
        return sum(float(((o - r) ** 2).sum()) for o, r in zip(outs, refs, strict=True))

    e_plain, e_shift = err([rtn]), err([{"fpq_shift": {}}, rtn])
    assert e_shift < 0.75 * e_plain and err([{"fpq_shift": {}}, rtn]) == e_shift


def test_bad_max_shift_names_the_key_path():
    with pytest.raises(ConfigError, match=r"recipe\[0\]\.fpq_shift\.max_shift"):
        load_recipe({"recipe": [{"fpq_shift": {"max_shift": -1}}]})
