"""Bring-your-own ONNX: accuracy of the integer execution vs float, plus cycles and energy.

:func:`run_onnx` is what ``hwsim run --onnx model.onnx`` calls. It accepts

- a **float** model: quantized here with onnxruntime's ``quantize_static`` (QDQ, MatMul only, uint8
  activations, per-channel int8 weights) calibrated on the calibration inputs; the float reference is
  the model itself;
- a **QDQ** model (``quantize_static``): run as stored; the float reference is the same graph with
  activation quantization bypassed (weights as stored, dequantized), or ``reference=`` a float model;
- a **dynamic** model (``quantize_dynamic``: DynamicQuantizeLinear + MatMulInteger): likewise.

A QDQ model (or a float model once quantized) is lowered to an hwsim graph with QuantSpecs and run by
the integer executor of the packaged models (:func:`integer_run`); a dynamic model runs in the ONNX
interpreter with every MatMul on hwsim's exact integer GEMM. onnxruntime (graph optimisations off) runs
the same model as an independent check. Its graph goes to :func:`hwsim.perf.api.simulate` with the
model's own quantization (format, granularity, scale, zero point) on the GEMM operand tensors.

Inputs: ``inputs=`` an ``.npz`` file (or dict) of arrays named like the model's inputs; otherwise, for
text models whose inputs are ``input_ids``/``attention_mask``/``token_type_ids``, held-out sentences
tokenized with the packaged BERT WordPiece tokenizer (calibration uses other sentences).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hwsim.atomic_io import write_text_atomic

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_feeds(inputs, input_names) -> dict:
    """Arrays for ``input_names`` from an ``.npz`` path or a dict; errors name the file and the keys."""
    source = str(inputs) if not isinstance(inputs, dict) else "inputs"
    if not isinstance(inputs, dict):
        path = Path(inputs)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: --inputs file not found (expected an .npz of arrays named "
                                    f"{', '.join(input_names)})")
        try:
            with np.load(path, allow_pickle=False) as data:
                inputs = {k: data[k] for k in data.files}
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    missing = [n for n in input_names if n not in inputs]
    if missing:
        raise ValueError(f"{source}: expected arrays named {', '.join(input_names)}; missing {', '.join(missing)}, "
                         f"not {sorted(inputs)!r}")
    return {n: np.asarray(inputs[n]) for n in input_names}


def text_feeds(input_names, kind: str, count: int) -> dict:
    """Token ids of ``count`` corpus sentences (``kind`` "eval" or "calib") for a BERT-style text model."""
    from hwsim.models import corpus, minilm

    if not set(input_names) <= set(TEXT_INPUTS):
        raise ValueError(f"model inputs {list(input_names)!r} are not text inputs ({', '.join(TEXT_INPUTS)}): "
                         f"pass --inputs feeds.npz with one array per input")
    ids, mask = minilm.Tokenizer()(corpus.sentences(kind, count))
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {n: feeds[n] for n in input_names}


def float_outputs(values: dict, names) -> list[str]:
    """Model outputs that are floating-point arrays (the ones accuracy is measured on)."""
    return [n for n in names if np.asarray(values[n]).dtype.kind == "f"]


def compare(out, ref) -> dict:
    """Row-wise cosine (min and mean over the leading axis) and max abs error of ``out`` vs ``ref``."""
    a = np.asarray(out, np.float64).reshape(len(out), -1)
    b = np.asarray(ref, np.float64).reshape(len(ref), -1)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()), "max_abs_error": float(np.abs(a - b).max())}


def prepare(path, inputs=None, sentences: int = 4, calib_sentences: int = 8, workdir=None):
    """Load the model and its feeds; quantize a float model. Returns (quantized OnnxModel, float reference
    runner, feeds, description)."""
    from hwsim.models.onnx_import import OnnxModel, quantize_with_onnxruntime

    model = OnnxModel(path)
    if model.quantization == "qoperator":
        raise ValueError(f"{path}: QOperator-format model (QLinear* ops) is not supported; quantize with "
                         "quant_format=QDQ (quantize_static) or use quantize_dynamic")
    feeds = load_feeds(inputs, model.input_names) if inputs is not None else \
        text_feeds(model.input_names, "eval", sentences)
    if model.quantization != "float":
        def reference(f):
            return model.run(f, unquantized=True)
        note = (f"{model.quantization} model as stored; float reference: the same graph with activation "
                "quantization bypassed (weights as stored)")
        return model, reference, feeds, note
    if inputs is not None:  # calibrate on the given samples themselves (one per leading index)
        calib = [{k: v[i:i + 1] for k, v in feeds.items()} for i in range(len(next(iter(feeds.values()))))]
    else:
        calib = _calibration(model.input_names, calib_sentences)
    from hwsim.progress import stage

    with tempfile.TemporaryDirectory(dir=workdir) as tmp, stage("onnxruntime quantize_static"):
        qmodel = OnnxModel(quantize_with_onnxruntime(path, Path(tmp) / "qdq.onnx", calib))
    note = ("float model quantized by onnxruntime quantize_static (QDQ, MatMul, uint8 activations, per-channel "
            f"int8 weights, {len(calib)} calibration samples); float reference: the float model")
    return qmodel, model.run, feeds, note


def _calibration(input_names, count: int) -> list[dict]:
    from hwsim.models import corpus, minilm

    tok = minilm.Tokenizer()
    out = []
    for sentence in corpus.sentences("calib", count):
        ids, mask = tok([sentence])
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        out.append({n: feeds[n] for n in input_names})
    return out


def ort_run(model, feeds: dict) -> dict:
    """The model in onnxruntime with graph optimisations off (its int8 kernels are inexact when fused)."""
    from hwsim.models.onnx_import import _ort_session

    sess = _ort_session(model.model)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


def run_onnx(path, inputs=None, arch=None, out_dir=None, *, sentences: int = 4, reference=None) -> dict:
    """Evaluate a user's ONNX model (float, QDQ or dynamic): accuracy of the integer execution, cycles, energy.

    Parameters
    ----------
    path : path
        The ONNX file.
    inputs : path or dict, optional
        ``.npz`` (or dict) of arrays named like the model's inputs; default: ``sentences`` tokenized
        held-out sentences for text models.
    arch : ArchSpec, mapping, YAML path or None
        Architecture for the cycle/energy model (None: the packaged default); its PE activation/weight
        formats are set to the model's (:func:`model_arch`).
    out_dir : path, optional
        Folder for ``summary.json``, ``summary.md``, ``per_layer.csv``, ``accuracy.csv``.
    reference : path, optional
        A float ONNX model to measure accuracy against (default: see module docstring).

    Returns
    -------
    dict
        The summary written to ``summary.json`` (plus ``markdown``).
    """
    from hwsim.progress import track

    start = time.perf_counter()
    qmodel, float_run, feeds, note = prepare(path, inputs, sentences)
    if reference is not None:
        from hwsim.models.onnx_import import OnnxModel

        float_run, note = OnnxModel(reference).run, f"float reference: {Path(reference).name}"
    steps = {"float reference": lambda: float_run(feeds),
             "hwsim integer": lambda: integer_run(qmodel, feeds),
             "onnxruntime": lambda: ort_run(qmodel, feeds), "cycles and energy": lambda: None}
    done = {}
    for name in track(list(steps), "onnx", unit="step"):
        done[name] = steps[name]() if name != "cycles and energy" else _simulate(done["hwsim integer"][1], arch)
    (mine, graph), ref, ort, (perf, spec) = done["hwsim integer"], done["float reference"], done["onnxruntime"], \
        done["cycles and energy"]
    rows = []
    for name in float_outputs(mine, qmodel.output_names):
        vs_float, vs_ort = compare(mine[name], ref[name]), compare(mine[name], ort[name])
        rows.append({"output": name, "shape": "x".join(str(d) for d in np.shape(mine[name])),
                     "cosine_vs_float": vs_float["cosine"], "cosine_min": vs_float["cosine_min"],
                     "max_abs_error_vs_float": vs_float["max_abs_error"],
                     "max_abs_diff_vs_onnxruntime": vs_ort["max_abs_error"]})
    summary = _summary(path, qmodel, feeds, note, rows, graph, perf)
    summary["wall_seconds"] = round(time.perf_counter() - start, 2)
    summary["markdown"] = onnx_markdown(summary)
    if out_dir is not None:
        _write(out_dir, summary, graph, perf, spec)
    return summary


def integer_run(qmodel, feeds: dict) -> tuple[dict, object]:
    """``(outputs by ONNX name, graph)`` of the quantized model on hwsim's integer executor.

    QDQ models are lowered to an hwsim graph (:func:`hwsim.models.onnx_lower.lower_onnx`, ONNX's own
    ``QuantizeLinear`` rounding kept as ``quantize`` ops) and run by
    :class:`hwsim.int_executor.IntegerExecutor`, the executor of the packaged models; the same graph is
    priced. Dynamic models (``DynamicQuantizeLinear`` + ``MatMulInteger``: per-call asymmetric scales no
    QuantSpec describes) run in the ONNX interpreter with every MatMul on hwsim's exact integer GEMM.
    """
    if qmodel.quantization == "dynamic":
        return qmodel.run_traced(feeds, integer=True)
    from hwsim.int_executor import IntegerExecutor
    from hwsim.models.onnx_lower import lower_onnx

    graph = lower_onnx(qmodel, feeds, fold_requant=False)
    values = IntegerExecutor(graph).run(feeds)
    return {name: values[t] for name, t in graph.meta["onnx_outputs"].items()}, graph


def model_arch(graph, arch):
    """``arch`` (resolved) with its PE activation/weight formats set to the model's most common GEMM pair,
    the way a preset sets them for ``hwsim run`` (so the array multiplies the formats the model stores)."""
    from collections import Counter
    from dataclasses import replace

    from hwsim.perf.arch import as_arch

    spec = as_arch(arch)
    pairs = Counter((graph.tensors[op.inputs[0]].quant.format, graph.tensors[op.inputs[1]].quant.format)
                    for op in graph.ops if op.kind == "linear"
                    and all(graph.tensors[t].quant is not None for t in op.inputs[:2]))
    if not pairs:
        return spec
    (a_format, w_format), _ = pairs.most_common(1)[0]
    return spec.with_(pe=replace(spec.pe, activation_format=a_format, weight_format=w_format))


def _simulate(graph, arch):
    from hwsim.perf.api import simulate

    spec = model_arch(graph, arch)
    return simulate(graph, spec), spec


def _summary(path, qmodel, feeds, note, rows, graph, perf) -> dict:
    formats = sorted({t.quant.format for t in graph.tensors.values() if t.quant is not None})
    summary = {"model": Path(path).name, "quantization": qmodel.quantization, "formats": formats or ["float32"],
               "reference": note, "inputs": {k: list(np.shape(v)) for k, v in feeds.items()},
               "accuracy": rows}
    if rows:
        summary["cosine_vs_float"] = min(r["cosine_vs_float"] for r in rows)
    summary["graph"] = {"name": graph.name, "ops": len(graph.ops), "macs": graph.total_macs}
    ps = perf.summary()
    summary["architecture"] = ps["arch"]
    summary["performance"] = {k: ps[k] for k in ("array", "dataflow", "clock_mhz", "timing_mode", "macs",
                                                 "total_cycles", "compute_cycles", "stall_cycles", "latency_us",
                                                 "utilization", "tops_per_w")}
    summary["total_cycles"] = int(ps["total_cycles"])
    summary["latency_us"] = float(ps["latency_us"])
    summary["energy_pj"] = {k: float(v) for k, v in ps["energy_breakdown_pj"].items()}
    summary["energy_total_pj"] = float(ps["energy_total_pj"])
    return summary


def _write(out_dir, summary: dict, graph, perf, spec) -> None:
    """``summary.json``, ``summary.md``, ``per_layer.csv``, ``accuracy.csv`` and ``arch.json`` (the
    architecture as simulated, PE formats included)."""
    from dataclasses import asdict

    import pandas as pd

    from hwsim.atomic_io import write_json_atomic

    out = Path(out_dir)
    write_json_atomic(out / "arch.json", asdict(spec))
    write_text_atomic(out / "per_layer.csv", perf.to_frame().to_csv(index=False))
    write_text_atomic(out / "accuracy.csv", pd.DataFrame(summary["accuracy"]).to_csv(index=False))
    write_text_atomic(out / "summary.md", summary["markdown"])
    write_text_atomic(out / "summary.json", json.dumps({k: v for k, v in summary.items() if k != "markdown"},
                                                      indent=1) + "\n")


def onnx_markdown(s: dict) -> str:
    """Short Markdown summary of :func:`run_onnx` (printed by ``hwsim run --onnx``)."""
    lines = [f"# hwsim run --onnx: {s['model']} ({s['quantization']})", "",
             f"Operand formats: {', '.join(s['formats'])}; {s['reference']}.", "",
             "## Accuracy of hwsim's integer execution", "",
             "| output | shape | cosine vs float | min | max abs error | max abs diff vs onnxruntime |",
             "|---|---|---:|---:|---:|---:|"]
    for r in s["accuracy"]:
        lines.append(f"| {r['output']} | {r['shape']} | {r['cosine_vs_float']:.4f} | {r['cosine_min']:.4f} | "
                     f"{r['max_abs_error_vs_float']:.4g} | {r['max_abs_diff_vs_onnxruntime']:.3g} |")
    p = s["performance"]
    lines += ["", "## Performance", "",
              f"- array {p['array']} {p['dataflow']} at {p['clock_mhz']:g} MHz ({p['timing_mode']} timing)",
              f"- MACs {p['macs']:,}, cycles {p['total_cycles']:,} (stall {p['stall_cycles']:,}), "
              f"latency {p['latency_us']:.2f} us, utilization {100 * p['utilization']:.1f} %",
              f"- energy {s['energy_total_pj'] * 1e-6:.3f} uJ: " + ", ".join(
                  f"{k} {v * 1e-6:.3f}" for k, v in s["energy_pj"].items() if v)]
    lines += ["", f"Wall time {s['wall_seconds']} s.", ""]
    return "\n".join(lines)
