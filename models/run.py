"""End-to-end model runs: accuracy on hwsim's bit-exact datapath next to cycles and energy.

:func:`run_model` is what ``hwsim run`` (no arguments) and ``hwsim model run`` call. For MiniLM-L6 it
calibrates static activation scales on pydoc calibration sentences, runs the float reference and every
requested format preset on held-out sentences, reports the cosine similarity of the sentence
embeddings, and feeds the graph (with the first preset's formats) to ``hwsim.perf.api.simulate`` when
the performance model is installed. Results are written atomically into ``out_dir``:
``summary.json``, ``summary.md``, ``per_layer.csv`` and ``accuracy.csv``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from hwsim.atomic_io import write_text_atomic

MODELS = ("minilm", "smollm2")


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30)


def _perf_formats(preset) -> tuple[str, str]:
    from hwsim.models.qexec import get_config

    c = get_config(preset)
    return c.w_format, c.a_format


def simulate_graph(graph, arch=None, formats: str | None = None):
    """Cycles/energy of ``graph`` on ``arch`` via ``hwsim.perf`` (None when perf is not installed).

    ``formats`` (a preset name) sets the PE weight/activation formats of the architecture.
    """
    try:
        from hwsim.perf.api import simulate
        from hwsim.perf.arch import as_arch
        from hwsim.perf.format_info import known_format
    except ModuleNotFoundError:
        return None
    spec = as_arch(arch)
    if formats is not None:
        w_fmt, a_fmt = _perf_formats(formats)
        if known_format(w_fmt) and known_format(a_fmt):
            spec = spec.with_(pe=replace(spec.pe, weight_format=w_fmt, activation_format=a_fmt))
    return simulate(graph, spec)


def _annotate(graph, preset: str) -> None:
    """Attach the preset's quant specs to the graph's weights and activations (for the per-op table)."""
    from hwsim.graph import QuantSpec
    from hwsim.models.qexec import get_config

    c = get_config(preset)
    for op in graph.ops:
        if op.kind == "linear":
            w = graph.tensors[op.inputs[1]]
            gs = c.group_size if c.w_granularity == "group" else None
            w.quant = QuantSpec(c.w_format, c.w_granularity, 0 if gs else 1, gs)
            graph.tensors[op.inputs[0]].quant = QuantSpec(c.a_format, "tensor")
            graph.tensors[op.outputs[0]].quant = QuantSpec(c.a_format, "tensor")  # requantized by the executor
        elif op.kind == "matmul":
            for t in op.inputs:
                graph.tensors[t].quant = QuantSpec(c.a_format, "tensor")


def checkpoint_round_trip(graph, cfg) -> dict:
    """Write every linear of ``graph`` as a ``cfg.checkpoint`` safetensors file, read it back (exactly),
    and return ``{op name: QuantLinear}`` for execution."""

    from hwsim.models.checkpoints import read_checkpoint, write_checkpoint

    linears = {op.name: graph.weights[op.inputs[1]] for op in graph.ops if op.kind == "linear"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        write_checkpoint(path, linears, cfg.checkpoint, bits=4, group_size=cfg.group_size)
        return read_checkpoint(path, cfg.checkpoint)


def run_minilm(formats=("w8a8",), sentences: int = 4, calib_sentences: int = 8, layers: int | None = None,
               smooth_alpha: float | None = 0.7) -> dict:
    """Float vs quantized MiniLM-L6 on ``sentences`` held-out pydoc sentences; returns a result dict."""
    from hwsim.models import corpus, minilm
    from hwsim.models.execute import FloatBackend, run_graph
    from hwsim.models.qexec import QuantBackend, calibrate, get_config

    for f in formats:
        if get_config(f).checkpoint == "gguf":
            raise ValueError(f"format {f!r} runs GGUF models only (--model smollm2), not MiniLM")
    config, weights = minilm.load_weights()
    tok = minilm.Tokenizer()

    def feeds(texts):
        ids, mask = tok(texts)
        return {"input_ids": ids, "attention_mask": mask}

    def build(f):
        return minilm.build_graph(config, weights, *f["input_ids"].shape, layers=layers)

    t0 = time.perf_counter()
    amax = calibrate(build, [feeds(corpus.sentences("calib", calib_sentences))])
    ev = feeds(corpus.sentences("eval", sentences))
    graph = build(ev)
    ref = run_graph(graph, ev, FloatBackend())["pooled"]
    rows, norm_errors = [], {}
    for f in formats:
        t1 = time.perf_counter()
        cfg = get_config(f)
        ckpt = None if cfg.checkpoint is None else checkpoint_round_trip(graph, cfg)
        backend = QuantBackend(cfg, amax, graph, smooth_alpha=smooth_alpha, checkpoint=ckpt)
        out = run_graph(graph, ev, backend)["pooled"]
        cos = cosine(out, ref)
        norm_errors[f] = [{"op": name, **{k: round(v, 6) for k, v in st.items()}}
                          for name, st in backend.norm_stats.items()]
        rows.append({"format": f, "description": get_config(f).describe(), "cosine_vs_float": float(cos.mean()),
                     "cosine_min": float(cos.min()), "sentences": int(len(cos)),
                     "seconds": round(time.perf_counter() - t1, 3)})
    return {"model": "minilm-l6", "graph": graph, "accuracy": rows,
            "tokens": int(ev["attention_mask"].sum()), "calibration_sentences": calib_sentences,
            "layernorm_errors": norm_errors,
            "smooth_alpha": smooth_alpha, "numerics_seconds": round(time.perf_counter() - t0, 3)}


def run_model(model: str = "minilm", arch=None, formats=("w8a8",), sentences: int = 4, out_dir=None,
              **options) -> dict:
    """Run ``model`` in float and through the bit-exact datapath for each format preset.

    Parameters
    ----------
    model : {"minilm", "smollm2"}
    arch : ArchSpec, mapping, YAML path or None (``hwsim.perf``'s default architecture)
    formats : sequence of preset names (see ``hwsim.models.qexec.PRESETS``); the first one also sets
        the PE formats of the performance run.
    sentences : int
        Held-out sentences (MiniLM) or text chunks (SmolLM2) to evaluate.
    out_dir : path, optional
        Folder for ``summary.json``, ``summary.md``, ``per_layer.csv`` and ``accuracy.csv``.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    if isinstance(formats, str):
        formats = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not formats:
        raise ValueError(f"formats must name at least one preset, not {formats!r}")
    if not isinstance(sentences, int) or sentences < 1:
        raise ValueError(f"sentences must be a positive int, not {sentences!r}")
    start = time.perf_counter()
    if model == "minilm":
        result = run_minilm(formats, sentences, **options)
    else:
        from hwsim.models.gguf_import import run_smollm2

        result = run_smollm2(formats, sentences, **options)
    graph = result.pop("graph")
    _annotate(graph, formats[0])
    perf = simulate_graph(graph, arch, formats[0])
    summary = {"model": result["model"], "formats": list(formats), "accuracy": result["accuracy"]}
    summary.update({k: v for k, v in result.items() if k not in ("model", "accuracy")})
    first = result["accuracy"][0]
    for key in ("cosine_vs_float", "perplexity", "perplexity_float", "next_token_agreement"):
        if key in first:
            summary[key] = first[key]
    summary["graph"] = {"name": graph.name, "ops": len(graph.ops), "macs": graph.total_macs}
    frame = graph.to_frame()
    if perf is not None:
        ps = perf.summary()
        summary["architecture"] = ps["arch"]
        summary["performance"] = {k: ps[k] for k in ("array", "dataflow", "clock_mhz", "timing_mode", "macs",
                                                     "total_cycles", "compute_cycles", "stall_cycles",
                                                     "latency_us", "utilization", "tops_per_w")}
        summary["total_cycles"] = int(ps["total_cycles"])
        summary["latency_us"] = float(ps["latency_us"])
        summary["energy_pj"] = {k: float(v) for k, v in ps["energy_breakdown_pj"].items()}
        summary["energy_total_pj"] = float(ps["energy_total_pj"])
        frame = perf.to_frame()
    else:
        summary["architecture"] = None
        summary["performance"] = "hwsim.perf not installed: accuracy only"
    summary["wall_seconds"] = round(time.perf_counter() - start, 2)
    summary["markdown"] = summary_markdown(summary)
    if out_dir is not None:
        out = Path(out_dir)
        write_text_atomic(out / "per_layer.csv", frame.to_csv(index=False))
        import pandas as pd

        write_text_atomic(out / "accuracy.csv", pd.DataFrame(summary["accuracy"]).to_csv(index=False))
        write_text_atomic(out / "summary.md", summary["markdown"])
        write_text_atomic(out / "summary.json", json.dumps({k: v for k, v in summary.items() if k != "markdown"},
                                                      indent=1) + "\n")
    return summary


def summary_markdown(s: dict) -> str:
    """Short Markdown report of a :func:`run_model` summary."""
    lines = [f"# hwsim run: {s['model']}", "",
             f"Architecture: {s.get('architecture') or 'n/a'}; formats: {', '.join(s['formats'])}.", "",
             "## Accuracy vs float", ""]
    keys = [k for k in s["accuracy"][0] if k not in ("format",)]
    lines.append("| format | " + " | ".join(keys) + " |")
    lines.append("|---|" + "---|" * len(keys))
    for row in s["accuracy"]:
        cells = [f"{row[k]:.4f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        lines.append(f"| {row['format']} | " + " | ".join(cells) + " |")
    if isinstance(s.get("performance"), dict):
        p = s["performance"]
        lines += ["", f"## Performance ({s['formats'][0]})", "",
                  f"- array {p['array']} {p['dataflow']} at {p['clock_mhz']:g} MHz ({p['timing_mode']} timing)",
                  f"- MACs {p['macs']:,}, cycles {p['total_cycles']:,} (stall {p['stall_cycles']:,}), "
                  f"latency {p['latency_us']:.2f} us, utilization {100 * p['utilization']:.1f} %",
                  f"- energy {s['energy_total_pj'] * 1e-6:.3f} uJ: " + ", ".join(
                      f"{k} {v * 1e-6:.3f}" for k, v in s["energy_pj"].items() if v)]
    lines += ["", f"Wall time {s['wall_seconds']} s.", ""]
    return "\n".join(lines)
