"""RL-SAT (the residual added inside the GEMM accumulator): one rounding instead of two, a scalar Python-int
reference bit for bit, the norm unit's direct per-channel output, and the graph-level mode."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.formats import get_format
from hwsim.int_executor import FixedPointError, IntegerExecutor
from hwsim.int_residual import ACC_BITS, rl_sat_add, skip_to_accumulator, two_step_add
from hwsim.layernorm import F_Z, calibrate_norm, float_norm, integer_norm
from hwsim.ptq import apply_recipe
from hwsim.qspec import quantize_activation
from hwsim.requant import quantize_multiplier
from tests.ptq.test_recipes import _batches, _mlp
from tests.ptq.test_rotation import _feeds, _tiny_llm


# -- scalar Python-int reference (independent of the vectorised requant unit) ---------------------------------
def ref_rescale(x: int, real: float, lo: int, hi: int, zp: int = 0) -> int:
    m, sh = quantize_multiplier(float(real))
    p = x * m
    r = p if sh == 0 else (p + (1 << (-sh - 1))) >> -sh  # floor(p 2^sh + 1/2)
    return min(max(r + zp, lo), hi)


def ref_rl_sat(acc: int, skip: int, s_skip: float, s_acc: float, s_out: float, zp: int = 0) -> int:
    lo, hi = -(1 << (ACC_BITS - 1)), (1 << (ACC_BITS - 1)) - 1
    t = min(max(acc + ref_rescale(skip, s_skip / s_acc, lo, hi), lo), hi)
    return ref_rescale(t, s_acc / s_out, -32768, 32767, zp)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1e-6, 1e-2), st.floats(1e-3, 1.0), st.floats(0.05, 50.0),
       st.integers(-5, 5))
def test_rl_sat_add_matches_the_scalar_reference_bit_for_bit(seed, s_acc0, s_skip, out_ratio, zp):
    rng = np.random.default_rng(seed)
    n = 16
    s_acc = s_acc0 * rng.uniform(0.5, 2.0, n)  # per channel (s_a s_w[c])
    s_out = s_skip * out_ratio
    acc = rng.integers(-(1 << 27), 1 << 27, (3, n))
    skip = rng.integers(-32768, 32768, (3, n))
    got = rl_sat_add(acc, skip, s_skip, s_acc, s_out, "int16", zp)
    want = [[ref_rl_sat(int(acc[r, c]), int(skip[r, c]), s_skip, float(s_acc[c]), s_out, zp) for c in range(n)]
            for r in range(3)]
    assert got.tolist() == want


def test_one_rounding_instead_of_two_on_a_planted_case():
    """acc·ŝ/s_o = 1.4 and skip·s_r/s_o = 1.4: the two-step path rounds each down (error 0.8 LSB), RL-SAT
    rounds the exact sum 2.8 once (error 0.2 LSB)."""
    s_acc, s_skip, s_out = np.full(4, 0.01), 0.1, 1.0
    acc, skip = np.full((1, 4), 140), np.full((1, 4), 14)
    exact = acc * s_acc / s_out + skip * s_skip / s_out
    rl = rl_sat_add(acc, skip, s_skip, s_acc, s_out)
    two = two_step_add(acc, skip, s_skip, s_acc, s_out)
    assert rl.tolist() == [[3] * 4] and two.tolist() == [[2] * 4]
    assert np.abs(rl - exact).max() == pytest.approx(0.2) and np.abs(two - exact).max() == pytest.approx(0.8)


def test_rl_sat_error_bound_and_never_worse_than_two_step_on_random_data():
    rng = np.random.default_rng(3)
    n = 64
    s_acc = rng.uniform(1e-4, 4e-4, n)
    s_skip, s_out = 0.02, 0.03  # ŝ/s_out <= 1/75: the skip's rounding in the accumulator is negligible
    acc = rng.integers(-(1 << 20), 1 << 20, (256, n))  # |exact| < 20,000: no saturation
    skip = rng.integers(-8000, 8000, (256, n))
    exact = (acc * s_acc + skip * s_skip) / s_out
    e_rl = np.abs(rl_sat_add(acc, skip, s_skip, s_acc, s_out) - exact)
    e_two = np.abs(two_step_add(acc, skip, s_skip, s_acc, s_out) - exact)
    bound = 0.5 + 0.5 * s_acc / s_out + 2.0**-31 * np.abs(exact)
    assert (e_rl <= bound + 1e-9).all()
    assert e_two.max() > 0.8 and e_rl.max() < 0.52  # two roundings approach 1 LSB, one stays at 1/2
    assert e_rl.mean() < 0.8 * e_two.mean()


def test_skip_already_at_the_accumulator_scale_passes_exactly():
    s = np.array([1e-5, 3.7e-4, 0.02])
    skip = np.array([[-(2**30), -1, 2**30 - 1]])
    assert np.array_equal(skip_to_accumulator(skip, s, s), skip)
    assert np.array_equal(skip_to_accumulator(skip, (s / 3.0) * 3.0, s), skip)  # float round trip: still exact


def test_accumulator_sum_saturates_and_is_counted():
    stats = {}
    y = rl_sat_add(np.array([[2**31 - 10]]), np.array([[100]]), 1.0, np.array([1.0]), 2.0**16, stats=stats)
    assert stats["acc_saturated"] == 1 and y.tolist() == [[32768 - 1]]


def test_norm_writes_a_per_channel_output_directly_within_its_bound():
    rng = np.random.default_rng(5)
    n = 48
    gamma, beta = rng.normal(size=n), rng.normal(size=n) * 0.3
    x = rng.integers(-3000, 3000, (32, n))
    scale = rng.uniform(2e-5, 8e-5, n)
    p = calibrate_norm("layernorm", gamma, beta, in_absmax=3000, out_scale=scale, out_format="int32")
    y = integer_norm(x, p)
    assert p.direct and y.dtype == np.int64 and np.abs(y).max() > 32767  # finer than any int16 stage
    ref = float_norm(x.astype(np.float64), "layernorm", gamma, beta)
    err_lsb = np.abs(y * scale - ref) / scale
    z_err = np.abs(gamma) * (2.0**-(F_Z + 1) + 1e-3) / scale  # z's rounding + σ/pre-shift terms, in output LSBs
    assert (err_lsb <= 0.51 + z_err).all()
    with pytest.raises(ValueError, match="per-channel norm output"):
        calibrate_norm("layernorm", gamma, beta, in_absmax=3000, out_scale=scale, out_format="int32", zero_point=3)


# -- graph level: the fixed_point step's residual option ---------------------------------------------------
RTN = {"rtn": {"weights": "int8", "activations": "int8", "act_granularity": "tensor", "residual_granularity": "tensor"}}


def _fixed(residual: str, mitigation=()) -> dict:
    return {"recipe": [*mitigation, RTN, {"fixed_point": {"residual": residual}}]}


@pytest.mark.parametrize("mitigation", [(), ({"gom": {"method": "mcom", "shift": False}},)])
def test_pre_norm_llm_adds_inside_the_accumulator(mitigation):
    g, calib, feeds = _tiny_llm(outlier=5), _feeds(3, seed=7), _feeds(1, seed=11)[0]
    q = apply_recipe(g, _fixed("rl-sat", mitigation), calib)
    add = q.op("res")
    assert add.attrs["residual"] == "rl-sat" and add.inputs[add.attrs["accumulator"]] == "y2"
    acc = q.tensors["y2"].quant
    assert acc.format == "int32" and acc.granularity == "channel"
    ex = IntegerExecutor(q)
    env = ex.run(feeds, keep=True)
    assert set(ex.numerics.values()) <= {"integer", "lookup", "rescale", "view"}
    skip, y2, r = env[add.inputs[1]], env["y2"], env["r"]
    ints = lambda t: get_format(t.fmt).code_to_int(t.codes)  # noqa: E731
    want = rl_sat_add(ints(y2), ints(skip), skip.scale, y2.scale, float(r.scale))
    assert np.array_equal(get_format(r.fmt).code_to_int(r.codes), want)  # the op is the kernel, bit for bit
    ref = run_graph(g, feeds, FloatBackend(), keep=True)["r"]
    two = IntegerExecutor(apply_recipe(g, _fixed("two-step", mitigation), calib)).run(feeds, keep=True)["r"]
    e_rl, e_two = np.abs(r.real() - ref).mean(), np.abs(two.real() - ref).mean()
    assert e_rl <= 1.02 * e_two


def test_post_ln_norm_writes_the_skip_at_the_accumulator_scale():
    g, calib, x = _mlp(), _batches(), _batches(1, seed=5)[0]
    q = apply_recipe(g, _fixed("rl-sat"), calib)
    x = {"x": quantize_activation(x["x"], q.tensors["x"].quant)}  # no embedding: the input arrives as codes
    h, y2 = q.tensors["h"].quant, q.tensors["y2"].quant
    assert h.format == y2.format == "int32" and np.array_equal(h.scale, y2.scale)
    ex = IntegerExecutor(q)
    env = ex.run(x, keep=True)
    assert ex.numerics["res"] == "integer" and env["h"].fmt == "int32"
    h_ints = get_format("int32").code_to_int(env["h"].codes)
    assert np.array_equal(skip_to_accumulator(h_ints, env["h"].scale, env["y2"].scale), h_ints)
    ref = run_graph(g, {"x": x["x"].real()}, FloatBackend())["out"]
    out = ex.run(x)["out"]
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.99


def test_rl_sat_mode_still_raises_on_any_float_op():
    g, calib, feeds = _tiny_llm(), _feeds(3, seed=7), _feeds(1)[0]
    q = apply_recipe(g, _fixed("rl-sat"), calib)
    for tensor, op in (("y2", "fc2"), ("a", "act"), ("r", "res")):
        edit = q.edit()
        edit.set_quant(tensor, None)  # that op would now compute (or end) in float
        with pytest.raises(FixedPointError, match=f"'{op}'"):
            IntegerExecutor(edit.freeze()).run(feeds)


def test_rl_sat_add_is_priced_on_integer_units():
    from hwsim.perf.api import simulate
    from hwsim.perf.arch import as_arch

    g, calib = _tiny_llm(), _feeds(3, seed=7)
    unfused = as_arch(None).with_(fusion=False)  # the add's own row (fusion may run it in fc2's epilogue)
    rl = simulate(apply_recipe(g, _fixed("rl-sat"), calib), unfused).to_frame().set_index("name")
    two = simulate(apply_recipe(g, _fixed("two-step"), calib), unfused).to_frame().set_index("name")
    assert "residual.acc_add:add32" in rl.loc["res", "int_units_label"]
    assert "residual.skip_scale:mult16x32" in rl.loc["res", "int_units_label"]
    assert two.loc["res", "int_units_label"] == ""


def test_gom_without_ori_ln_expands_the_stream_before_a_vanilla_norm():
    g, calib = _tiny_llm(outlier=5), _feeds(3, seed=7)
    q = apply_recipe(g, {"recipe": [{"gom": {"method": "mcom", "shift": False, "ori_ln": False}}, RTN,
                                    {"fixed_point": {"residual": "rl-sat"}}]}, calib)
    n1 = q.op("n1")
    assert "ori_lambda" not in n1.attrs and n1.inputs[0] == "n1.gom_expand.q"
    assert q.tensors["n1.gom_expand.q"].quant.granularity == "tensor"
    feeds = _feeds(1)[0]
    a = run_graph(g, feeds, FloatBackend())["logits"]
    b = run_graph(q, feeds, FloatBackend())["logits"]
    assert np.abs(a - b).max() < 1e-4 * np.abs(a).max()  # the float function is unchanged
    ex = IntegerExecutor(q)
    ex.run(feeds)
    assert ex.numerics["n1.gom_expand"] == "rescale" and ex.numerics["n1.gom_expand.requant"] == "integer"
