"""``hwsim model check-onnx``: hwsim's integer GEMM against onnxruntime on a real ONNX model.

:func:`check_onnx` takes a float, QDQ or dynamic-quantized model:

- **float**: quantized with onnxruntime's ``quantize_static`` (QDQ, MatMul only, uint8 activations,
  per-channel int8 weights) on calibration sentences, then checked like a QDQ model;
- **QDQ** (already quantized): checked as stored, no re-quantization;
- **dynamic** (``quantize_dynamic``): every ``DynamicQuantizeLinear`` is recomputed by hwsim from
  onnxruntime's own input and compared code for code (and scale, zero point), then every
  ``MatMulInteger`` as below.

For every quantized MatMul hwsim's exact int64 accumulators (:func:`hwsim.gemm.gemm`) on onnxruntime's
codes are compared with onnxruntime's ``MatMulInteger`` on the same codes (graph optimisations off), in
its exact u8u8 form: its u8s8 kernel (AVX2 without VNNI) sums pairs of products into saturating int16
and is not exact, which is reported separately. For QDQ models the requant difference is measured too:
onnxruntime re-quantizes in float32 with round-half-even, hwsim's requant unit uses a 32-bit fixed-point
multiplier with gemmlowp rounding.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hwsim.models.onnx_import import (
    OnnxModel,
    _ort_session,
    dynamic_quantize_linear,
    integer_matmul,
    load_onnx,
    ort_matmul_integer,
    quantize_linear,
    quantize_with_onnxruntime,
    vital_minilm_path,
)


def _text_feeds(texts):
    from hwsim.models import minilm

    ids, mask = minilm.Tokenizer()(texts)
    return {"input_ids": ids, "attention_mask": mask}


def _operands(model: OnnxModel, node, env):
    """[(codes, zp, scale or None)] x 2 of a QDQ MatMul or a MatMulInteger."""
    if node.op_type == "MatMul":
        return model.quantized_operands(node, env)
    out = []
    for slot in (0, 1):
        codes = env[node.input[slot]]
        zp_name = node.input[slot + 2] if len(node.input) > slot + 2 else ""
        out.append((codes, env[zp_name] if zp_name else np.zeros((), codes.dtype), None))
    return out


def _sites(model: OnnxModel):
    return [n for n in model.nodes if (n.op_type == "MatMul" and model._dq_inputs(n)) or n.op_type == "MatMulInteger"]


def _u8_form(b, zb):
    """The same product with an int8 B as uint8 (B + 128, zero point + 128): onnxruntime's exact u8u8 kernel."""
    return (b.astype(np.int16) + 128).astype(np.uint8), np.asarray(zb).astype(np.int16) + 128


def _dynamic_rows(model: OnnxModel, env) -> tuple[int, int]:
    """(equal, total) DynamicQuantizeLinear nodes whose codes, scale and zero point hwsim reproduces exactly."""
    nodes = [n for n in model.nodes if n.op_type == "DynamicQuantizeLinear"]
    equal = 0
    for node in nodes:
        codes, scale, zp = dynamic_quantize_linear(env[node.input[0]])
        ort = [env[o] for o in node.output]
        equal += bool(np.array_equal(codes, ort[0]) and np.float32(scale) == np.float32(ort[1])
                      and int(zp) == int(ort[2]))
    return equal, len(nodes)


def _requant(node, consumers, env, acc, sa, sb):
    """Requant codes differing between hwsim's fixed-point unit and onnxruntime's float32 QuantizeLinear."""
    from hwsim.requant import quantize_multiplier, requantize

    qn = [c for c in consumers.get(node.output[0], []) if c.op_type == "QuantizeLinear"]
    if not qn or sa is None or np.size(sb) != 1:
        return None
    s_out, z_out = env[qn[0].input[1]], env[qn[0].input[2]]
    ort_codes = quantize_linear((acc.astype(np.float64) * (np.float32(sa) * np.float32(sb))).astype(np.float32),
                                s_out, z_out)
    m, sh = quantize_multiplier(float(np.float32(sa) * np.float32(sb)) / float(s_out))
    hw = requantize(acc, m, sh, int(z_out), out_format="uint8" if z_out.dtype == np.uint8 else "int8")
    return np.abs(hw - ort_codes.astype(np.int64))


def _prepare(model_path, calib_sentences, workdir, tmp):
    """(quantized model, float reference runner, header note)."""
    from hwsim.models import corpus

    original = OnnxModel(model_path)
    kind = original.quantization
    if kind == "qoperator":
        raise ValueError(f"{model_path}: QOperator-format model (QLinear* ops) is not supported; quantize with "
                         "quant_format=QDQ (quantize_static) or use quantize_dynamic")
    if kind != "float":
        note = (f"{Path(model_path).name} is already quantized ({kind}): checking its quantized MatMuls as stored "
                "(no re-quantization); float reference = the same graph with activation quantization bypassed")
        return original, lambda feeds: original.run(feeds, unquantized=True), note
    from hwsim.progress import stage

    calib = [_text_feeds([s]) for s in corpus.sentences("calib", calib_sentences)]
    with stage("onnxruntime quantize_static"):
        qpath = quantize_with_onnxruntime(model_path, Path(tmp) / "qdq.onnx", calib)
    note = f"{Path(model_path).name} is a float model: quantized by onnxruntime quantize_static (QDQ) for the check"
    return OnnxModel(qpath), original.run, note


def check_onnx(model_path=None, *, sentences: int = 2, calib_sentences: int = 8, workdir=None) -> dict:
    """Compare hwsim's integer GEMM with onnxruntime on ``model_path`` (default: paraphrase-MiniLM-L3).

    Returns a dict with per-MatMul rows, ``accumulators_equal``, ``quantization`` of the input, the
    DynamicQuantizeLinear and requant comparisons, end-to-end cosines and a text report.
    """
    from hwsim.models import corpus
    from hwsim.progress import track

    model_path = Path(model_path) if model_path is not None else vital_minilm_path()
    load_onnx(model_path)  # a bad file fails here, with its name, before onnxruntime sees it
    ev = _text_feeds(corpus.sentences("eval", sentences))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        qmodel, float_run, note = _prepare(model_path, calib_sentences, workdir, tmp)
    sites = _sites(qmodel)
    wanted = {o for n in qmodel.nodes if n.op_type == "DynamicQuantizeLinear" for o in n.output}
    wanted |= {n.output[0] for n in sites}
    for n in sites:
        for i in n.input:
            p = qmodel.producer.get(i)
            if p is not None and p.op_type == "DequantizeLinear":
                wanted.add(p.input[0])
            elif i and i not in qmodel.initializers:
                wanted.add(i)
            if p is not None and p.op_type == "DynamicQuantizeLinear":
                wanted.add(p.input[0])
    sess = _ort_session(qmodel.model, sorted(wanted - set(qmodel.initializers)))
    env = dict(qmodel.initializers)
    env.update(zip([o.name for o in sess.get_outputs()], sess.run(None, ev), strict=True))
    consumers: dict[str, list] = {}
    for n in qmodel.nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    rows, diffs = [], []
    for node in track(sites, "check-onnx", unit="matmul"):
        (a, za, sa), (b, zb, sb) = _operands(qmodel, node, env)
        acc = integer_matmul(a, za, b, zb)
        equal_direct = bool(np.array_equal(acc, ort_matmul_integer(a, za, b, zb).astype(np.int64)))
        ref = ort_matmul_integer(a, za, *_u8_form(b, zb)) if b.dtype == np.int8 else None
        equal = equal_direct if ref is None else bool(np.array_equal(acc, ref.astype(np.int64)))
        d = _requant(node, consumers, env, acc, sa, sb)
        if d is not None:
            diffs.append(d)
        rows.append({"node": node.name or node.output[0], "op": node.op_type,
                     "shape": f"{tuple(a.shape)}x{tuple(b.shape)}", "a_format": str(a.dtype),
                     "b_format": str(b.dtype), "accumulators_equal": equal, "equal_to_u8s8_kernel": equal_direct,
                     "max_abs_acc": int(np.abs(acc).max()),
                     "requant_vs_ort": "" if d is None else f"{int(np.count_nonzero(d))}/{d.size} codes differ "
                                                            f"(max {int(d.max())})"})
    dq_equal, dq_total = _dynamic_rows(qmodel, env)
    report = {"model": model_path.name, "quantization": OnnxModel(model_path).quantization, "note": note,
              "matmuls": rows, "accumulators_equal": bool(rows) and all(r["accumulators_equal"] for r in rows),
              "dynamic_quantize_equal": dq_equal, "dynamic_quantize_total": dq_total,
              "requant_codes_differing": int(sum(np.count_nonzero(d) for d in diffs)),
              "requant_codes_total": int(sum(d.size for d in diffs)),
              "requant_max_code_difference": int(max((d.max() for d in diffs), default=0))}
    report.update(_end_to_end(qmodel, sess, ev, float_run))
    report["text"] = _text(report, sentences)
    return report


def _end_to_end(qmodel: OnnxModel, sess, ev, float_run) -> dict:
    """Cosines of hwsim's integer execution, onnxruntime's run of the quantized model, and float."""
    out_name = next((o.name for o in sess.get_outputs() if o.name in qmodel.output_names
                     and len(o.shape) == 2 and "float" in o.type), qmodel.output_names[0])
    hw = qmodel.run(ev, integer=True)[out_name]
    ort_out = sess.run([out_name], ev)[0]
    float_out = float_run(ev)[out_name]

    def cos(x, y):
        x, y = np.asarray(x, np.float64).reshape(len(x), -1), np.asarray(y, np.float64).reshape(len(y), -1)
        return float(np.min((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)))

    return {"output": out_name, "cosine_hwsim_vs_ort_qdq": cos(hw, ort_out),
            "cosine_ort_qdq_vs_float": cos(ort_out, float_out), "cosine_hwsim_vs_float": cos(hw, float_out)}


def _text(r: dict, sentences: int) -> str:
    rows = r["matmuls"]
    lines = [r["note"],
             f"onnxruntime check on {r['model']} ({sentences} sentences, {len(rows)} quantized MatMuls, graph "
             "optimisations disabled)"]
    for row in rows:
        lines.append(f"  {'OK ' if row['accumulators_equal'] else 'BAD'} {row['node'][-56:]:<56} {row['shape']:<30} "
                     f"{row['requant_vs_ort']}")
    lines.append(f"int32 accumulators hwsim == onnxruntime MatMulInteger (u8u8 form): {r['accumulators_equal']}; "
                 f"onnxruntime's u8s8 kernel agrees on {sum(x['equal_to_u8s8_kernel'] for x in rows)}/{len(rows)} "
                 f"(int16 pair saturation without VNNI)")
    if r["dynamic_quantize_total"]:
        lines.append(f"DynamicQuantizeLinear codes, scale and zero point hwsim == onnxruntime: "
                     f"{r['dynamic_quantize_equal']}/{r['dynamic_quantize_total']} nodes")
    if r["requant_codes_total"]:
        lines.append(f"requant (gemmlowp fixed-point vs onnxruntime float32 round-half-even): "
                     f"{r['requant_codes_differing']}/{r['requant_codes_total']} codes differ, max difference "
                     f"{r['requant_max_code_difference']}")
    lines.append(f"cosine ({r['output']}): hwsim integer vs onnxruntime {r['cosine_hwsim_vs_ort_qdq']:.6f}, "
                 f"onnxruntime vs float {r['cosine_ort_qdq_vs_float']:.4f}, "
                 f"hwsim integer vs float {r['cosine_hwsim_vs_float']:.4f}")
    return "\n".join(lines)
