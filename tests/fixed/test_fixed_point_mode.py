"""The fixed-point execution mode: integer kernels everywhere after the embedding, raises on float."""

import numpy as np
import pytest

from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import FixedPointError, IntegerExecutor
from hwsim.int_softmax import calibrate_softmax, integer_softmax
from hwsim.models import corpus, minilm
from hwsim.models.run import cosine
from hwsim.ptq import apply_recipe

pytestmark = pytest.mark.slow

FIXED = {"recipe": [{"smoothquant": {"alpha": 0.7}},
                    {"rtn": {"activations": "int8", "act_granularity": "tensor", "residual_granularity": "tensor"}},
                    {"fixed_point": {"softmax_bits": 16, "rope_bits": 16}}]}


@pytest.fixture(scope="module")
def setup(minilm_model):
    config, weights, tok = minilm_model

    def feeds(texts):
        ids, mask = tok(texts)
        return {"input_ids": ids, "attention_mask": mask}

    ev = feeds(corpus.sentences("eval", 2))
    g = minilm.build_graph(config, weights, *ev["input_ids"].shape, layers=2)
    return g, ev, [feeds(corpus.sentences("calib", 4))]


def test_minilm_runs_integer_only(setup):
    g, ev, calib = setup
    q = apply_recipe(g, FIXED, calib)
    ex = IntegerExecutor(q)
    out = ex.run(ev)["pooled"]
    assert "float" not in ex.numerics.values()
    kinds = {q.op(n).kind: v for n, v in ex.numerics.items()}
    assert kinds["softmax"] == kinds["gelu"] == kinds["mean_pool"] == "integer"
    cos = cosine(out, run_graph(g, ev, FloatBackend())["pooled"])
    assert cos.min() > 0.98


def test_softmax_op_is_the_kernel_bit_for_bit(setup):
    g, ev, calib = setup
    q = apply_recipe(g, FIXED, calib)
    env = IntegerExecutor(q).run(ev, keep=True)
    op = next(o for o in q.ops if o.kind == "softmax")
    x, y = env[op.inputs[0]], env[op.outputs[0]]
    assert y.fmt == "uint16" and float(y.scale) == 2.0**-16
    keep = (np.asarray(ev["attention_mask"]) > 0)[:, None, None, :]
    p = calibrate_softmax(float(x.scale), 16, "poly")
    ints = x.codes.astype(np.int16).astype(np.int64)
    assert np.array_equal(y.codes.astype(np.int64), integer_softmax(ints, p, keep))


def test_mode_raises_naming_a_float_op(setup):
    g, ev, calib = setup
    q = apply_recipe(g, FIXED, calib)
    softmax = next(o for o in q.ops if o.kind == "softmax")
    edit = q.edit()
    edit.set_quant(softmax.inputs[0], None)  # its matmul now ends in a float epilogue
    broken = edit.freeze()
    with pytest.raises(FixedPointError, match=r"op '.*' \((matmul|softmax)\)"):
        IntegerExecutor(broken).run(ev)


def test_mode_raises_on_dynamic_scale(setup):
    g, ev, calib = setup
    q = apply_recipe(g, FIXED, calib)
    add = next(o for o in q.ops if o.kind == "add")
    edit = q.edit()
    edit.set_quant(add.outputs[0], q.tensors[add.outputs[0]].quant.with_(granularity="token", scale=None))
    with pytest.raises(FixedPointError, match=add.name):
        IntegerExecutor(edit.freeze()).run(ev)


def test_default_mode_keeps_float_kernels(setup):
    g, ev, calib = setup
    ex = IntegerExecutor(apply_recipe(g, "w8a8", calib))
    ex.run(ev)
    assert {ex.numerics[o.name] for o in g.ops if o.kind == "softmax"} == {"float"}


def test_cost_model_charges_the_integer_units(setup):
    from hwsim.perf.api import simulate
    from hwsim.perf.arch import as_arch

    g, ev, calib = setup
    unfused = as_arch(None).with_(fusion=False)  # one per-op row per op (fusion would merge GELU into its GEMM)
    fixed = simulate(apply_recipe(g, FIXED, calib), unfused).to_frame().set_index("name")
    table = {**FIXED, "recipe": FIXED["recipe"][:-1] + [{"fixed_point": {"exp": "table", "exp_table_bits": 6}}]}
    lut = simulate(apply_recipe(g, table, calib), unfused).to_frame().set_index("name")
    plain = simulate(apply_recipe(g, "w8a8", calib), unfused).to_frame().set_index("name")
    sm = next(o.name for o in g.ops if o.kind == "softmax")
    gelu = next(o.name for o in g.ops if o.kind == "gelu")
    assert "softmax.reciprocal:div" in fixed.loc[sm, "int_units_label"]
    assert "softmax.exp_poly" in fixed.loc[sm, "int_units_label"]
    assert "softmax.exp_table:lut17x64" in lut.loc[sm, "int_units_label"] and lut.loc[sm, "lut_bytes"] == 64 * 17 / 8
    assert "gelu.erf_square:mult14x14" in fixed.loc[gelu, "int_units_label"]
    assert plain.loc[sm, "int_units_label"] == ""
    for frame in (fixed, lut):
        assert 0 < frame.loc[sm, "energy_vector_pj"] < plain.loc[sm, "energy_vector_pj"]
        assert frame.loc[sm, "compute_cycles"] > 0


def test_fused_rows_keep_their_members_integer_units(setup):
    """With fusion on (the default), a group holding GELU lists the GELU unit's integer units."""
    from hwsim.perf.api import simulate

    g, ev, calib = setup
    frame = simulate(apply_recipe(g, FIXED, calib), None).to_frame()
    gelu = next(o.name for o in g.ops if o.kind == "gelu")
    fused = frame[frame["fused_ops"].str.contains(gelu, regex=False)]
    assert len(fused) == 1 and "gelu.erf_square:mult14x14" in fused["int_units_label"].iloc[0]


def test_smollm2_runs_integer_only():
    from hwsim.models.run import quantize_and_score, smollm2_task

    task = smollm2_task(1, 16, layers=2, calib_chunks=1)
    reference = [run_graph(task.graph, f, FloatBackend()) for f in task.evaluation]
    q, row, ex = quantize_and_score(task, "fixed-mcom-r8-s8", reference)
    assert "float" not in ex.numerics.values()
    kinds = {q.op(n).kind for n, v in ex.numerics.items() if v == "integer"}
    assert {"softmax", "rope", "swiglu", "rmsnorm", "linear", "matmul", "add"} <= kinds
    assert q.tensors[next(o for o in q.ops if o.kind == "softmax").outputs[0]].quant.format == "uint8"
    assert np.isfinite(row["perplexity"]) and row["perplexity"] < 50 * row["perplexity_float"]
