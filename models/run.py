"""End-to-end model runs: accuracy on hwsim's bit-exact datapath next to cycles and energy, per recipe.

:func:`run_model` is what ``hwsim run`` calls. The data flow is the same for every model:

1. the importer builds the float graph (MiniLM-L6 from safetensors, SmolLM2-135M from GGUF, whose stored
   blocks are already QuantSpecs on its weights);
2. each requested format is a recipe (a preset name or a recipe YAML, :mod:`hwsim.ptq`): it is applied to
   the graph with calibration batches from the held-in pydoc split, giving one quantized graph;
3. the float reference (:class:`hwsim.float_executor.FloatBackend`) and the integer executor
   (:class:`hwsim.int_executor.IntegerExecutor`, reading only the quantized graph) run the held-out batches;
   MiniLM reports the cosine of the sentence embeddings, SmolLM2 perplexity (with its standard error across
   chunks) and next-token agreement;
4. the same quantized graph is priced by ``hwsim.perf`` (each op at its own formats).

Results are written atomically into ``out_dir``: ``summary.json``, ``summary.md``, ``per_layer.csv`` (one
row per op and format, with how the integer executor computed it) and ``accuracy.csv``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.atomic_io import write_text_atomic

MODELS = ("minilm", "smollm2")
DEFAULT_FORMATS = {"minilm": ("w8a8",), "smollm2": ("q4_1-a8",)}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30)


@dataclass
class ModelTask:
    """What a model contributes to a run: its float graph, calibration and evaluation batches, a scorer."""

    name: str
    graph: object
    calibration: list
    evaluation: list
    score: object  # (float outputs per batch, quantized outputs per batch) -> dict of metrics
    info: dict


# -- MiniLM ------------------------------------------------------------------------------------------
def minilm_task(sentences: int = 4, calib_sentences: int = 8, layers: int | None = None) -> ModelTask:
    """MiniLM-L6 on ``sentences`` held-out pydoc sentences (one batch), calibrated on ``calib_sentences``."""
    from hwsim.models import corpus, minilm

    config, weights = minilm.load_weights()
    tok = minilm.Tokenizer()

    def feeds(texts):
        ids, mask = tok(texts)
        return {"input_ids": ids, "attention_mask": mask}

    ev = feeds(corpus.sentences("eval", sentences))
    graph = minilm.build_graph(config, weights, *ev["input_ids"].shape, layers=layers)

    def score(ref, out):
        cos = cosine(out[0]["pooled"], ref[0]["pooled"])
        return {"cosine_vs_float": float(cos.mean()), "cosine_min": float(cos.min()), "sentences": int(len(cos))}

    return ModelTask("minilm-l6", graph, [feeds(corpus.sentences("calib", calib_sentences))], [ev], score,
                     {"tokens": int(ev["attention_mask"].sum()), "calibration_sentences": calib_sentences})


# -- SmolLM2 -----------------------------------------------------------------------------------------
def nll(logits: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Negative log-likelihood of ``ids[1:]`` under ``logits[:-1]`` (one sequence) and the argmax predictions."""
    lg = np.asarray(logits, np.float64).reshape(-1, logits.shape[-1])[:-1]
    tgt = np.asarray(ids).reshape(-1)[1:]
    lg = lg - lg.max(axis=1, keepdims=True)
    logp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(tgt)), tgt], lg.argmax(axis=1)


def perplexity_stats(chunk_nll: list[np.ndarray]) -> tuple[float, float]:
    """Perplexity over all tokens and its standard error across chunks (delta method on the chunk means)."""
    means = np.array([c.mean() for c in chunk_nll])
    ppl = float(np.exp(np.concatenate(chunk_nll).mean()))
    se = float(ppl * means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
    return ppl, se


def smollm2_task(chunks: int = 8, tokens: int = 256, layers: int | None = None, calib_chunks: int = 2) -> ModelTask:
    """SmolLM2-135M on ``chunks`` held-out pydoc chunks of ``tokens`` tokens (BOS + text), calibrated on
    ``calib_chunks`` chunks of the calibration split."""
    from hwsim.models import corpus
    from hwsim.models.gguf_import import build_graph, shared_model

    if not isinstance(tokens, int) or tokens < 8:
        raise ValueError(f"tokens must be an int >= 8, not {tokens!r}")
    model = shared_model()
    tok = model.tokenizer()

    def split(name: str, count: int) -> list[dict]:
        ids = tok.encode(corpus.text(name, 8 * tokens * count + 400)).ids
        out = []
        for c in range(count):
            piece = ids[c * (tokens - 1):(c + 1) * (tokens - 1)]
            if len(piece) < tokens - 1:
                raise ValueError(f"the {name} split holds fewer than {count} chunks of {tokens} tokens")
            out.append({"input_ids": np.array([[model.bos_id] + piece], np.int64)})
        return out

    evaluation = split("eval", chunks)
    graph = build_graph(model, tokens, layers=layers)
    out_name = graph.outputs[0]

    def score(ref, out):
        nf, nq, agree = [], [], []
        for r, q, f in zip(ref, out, evaluation, strict=True):
            a, pa = nll(r[out_name], f["input_ids"])
            b, pb = nll(q[out_name], f["input_ids"])
            nf.append(a)
            nq.append(b)
            agree.append(float(np.mean(pa == pb)))
        ppl_f, se_f = perplexity_stats(nf)
        ppl_q, se_q = perplexity_stats(nq)
        return {"perplexity": ppl_q, "perplexity_se": se_q, "perplexity_float": ppl_f, "perplexity_float_se": se_f,
                "next_token_agreement": float(np.mean(agree)), "tokens": int(sum(len(x) for x in nq))}

    return ModelTask("smollm2-135m", graph, split("calib", calib_chunks), evaluation, score,
                     {"chunks": chunks, "tokens_per_chunk": tokens})


# -- the run -----------------------------------------------------------------------------------------
def quantize_and_score(task: ModelTask, recipe, reference: list) -> tuple[object, dict, object]:
    """Apply ``recipe`` to the task's graph, run the integer executor on every evaluation batch.

    Returns ``(quantized graph, accuracy row, executor)``.
    """
    from hwsim.int_executor import IntegerExecutor
    from hwsim.ptq import apply_recipe, load_recipe

    recipe = load_recipe(recipe)
    t0 = time.perf_counter()
    qgraph = apply_recipe(task.graph, recipe, task.calibration)
    executor = IntegerExecutor(qgraph, norm_reference=True)
    outputs = [executor.run(feeds) for feeds in task.evaluation]
    row = {"format": recipe.name, "description": recipe.describe(), **task.score(reference, outputs),
           "seconds": round(time.perf_counter() - t0, 3)}
    return qgraph, row, executor


def price(qgraph, arch):
    """Cycles/energy of a quantized graph via ``hwsim.perf`` (each op at its own formats)."""
    from hwsim.perf.api import simulate

    return simulate(qgraph, arch)


def _perf_summary(perf) -> dict:
    ps = perf.summary()
    keep = ("array", "dataflow", "clock_mhz", "timing_mode", "macs", "total_cycles", "compute_cycles",
            "stall_cycles", "latency_us", "utilization", "tops_per_w")
    return {**{k: ps[k] for k in keep if k in ps}, "architecture": ps["arch"],
            "energy_pj": {k: float(v) for k, v in ps["energy_breakdown_pj"].items()},
            "energy_total_pj": float(ps["energy_total_pj"])}


def process_seconds(fallback_start: float) -> float:
    """Wall time since this process started (Linux ``/proc``), else since ``fallback_start`` (perf_counter)."""
    import os

    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - fallback_start


def run_model(model: str = "minilm", arch=None, formats=None, sentences: int | None = None, out_dir=None,
              **options) -> dict:
    """Run ``model`` in float and through the bit-exact datapath for each format (recipe), with its cost.

    Parameters
    ----------
    model : {"minilm", "smollm2"}
    arch : ArchSpec, mapping, YAML path or None (``hwsim.perf``'s default architecture)
    formats : recipe preset names (``hwsim model formats``) or recipe YAML paths, or a comma-separated str
    sentences : int
        Held-out sentences (MiniLM; default 4) or text chunks of ``tokens`` tokens (SmolLM2; default 8).
    out_dir : path, optional
        Folder for ``summary.json``, ``summary.md``, ``per_layer.csv`` and ``accuracy.csv``.
    options
        MiniLM: ``calib_sentences``, ``layers``; SmolLM2: ``tokens``, ``layers``, ``calib_chunks``.

    Returns
    -------
    dict
        The summary written to ``summary.json``.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    if formats is None:
        formats = DEFAULT_FORMATS[model]
    if isinstance(formats, str):
        formats = tuple(f.strip() for f in formats.split(",") if f.strip())
    if not formats:
        raise ValueError(f"formats must name at least one recipe, not {formats!r}")
    if sentences is not None and (not isinstance(sentences, int) or sentences < 1):
        raise ValueError(f"sentences must be a positive int, not {sentences!r}")
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.progress import stage, track
    from hwsim.ptq import load_recipe

    recipes = [load_recipe(f) for f in formats]  # every bad name fails before any work
    start = time.perf_counter()
    if model == "minilm":
        task = minilm_task(sentences or 4, **options)
    else:
        task = smollm2_task(sentences or 8, **options)
    with stage(f"{task.name}: float reference"):
        reference = [run_graph(task.graph, feeds, FloatBackend()) for feeds in task.evaluation]
    rows, performance, frames, norm_errors = [], {}, [], {}
    for recipe in track(recipes, f"{task.name}: formats", unit="format"):
        qgraph, row, executor = quantize_and_score(task, recipe, reference)
        rows.append(row)
        norm_errors[recipe.name] = [{"op": n, **{k: round(v, 6) for k, v in st.items()}}
                                    for n, st in executor.norm_stats.items()]
        perf = price(qgraph, arch)
        frame = perf.to_frame()
        frame.insert(0, "format", recipe.name)
        frame["numerics"] = [_numerics(name, fused, executor.numerics)
                             for name, fused in zip(frame["name"], frame["fused_ops"], strict=True)]
        frames.append(frame)
        performance[recipe.name] = _perf_summary(perf)
    summary = _summary(task, [r.name for r in recipes], rows, performance, norm_errors)
    summary["wall_seconds"] = round(process_seconds(start), 2)
    summary["markdown"] = summary_markdown(summary)
    if out_dir is not None:
        _write(Path(out_dir), summary, frames)
    return summary


def _summary(task: ModelTask, names: list, rows: list, performance: dict, norm_errors: dict) -> dict:
    graph = task.graph
    summary = {"model": task.name, "formats": names, "accuracy": rows, **task.info,
               "graph": {"name": graph.name, "ops": len(graph.ops), "macs": graph.total_macs},
               "layernorm_errors": norm_errors}
    for key in ("cosine_vs_float", "perplexity", "perplexity_float", "next_token_agreement"):
        if key in rows[0]:
            summary[key] = rows[0][key]
    first = performance[names[0]]
    summary["architecture"] = first["architecture"]
    summary["performance"] = {k: v for k, v in first.items() if k not in ("architecture", "energy_pj",
                                                                           "energy_total_pj")}
    summary["total_cycles"] = int(first["total_cycles"])
    summary["latency_us"] = float(first["latency_us"])
    summary["energy_pj"] = first["energy_pj"]
    summary["energy_total_pj"] = first["energy_total_pj"]
    summary["performance_by_format"] = performance
    return summary


def _write(out: Path, summary: dict, frames: list) -> None:
    import pandas as pd

    write_text_atomic(out / "per_layer.csv", pd.concat(frames, ignore_index=True).to_csv(index=False))
    write_text_atomic(out / "accuracy.csv", pd.DataFrame(summary["accuracy"]).to_csv(index=False))
    write_text_atomic(out / "summary.md", summary["markdown"])
    write_text_atomic(out / "summary.json", json.dumps({k: v for k, v in summary.items() if k != "markdown"},
                                                      indent=1) + "\n")


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def summary_markdown(s: dict) -> str:
    """Short Markdown report of a :func:`run_model` summary: accuracy and cost per format."""
    lines = [f"# hwsim run: {s['model']}", "",
             f"Architecture: {s.get('architecture') or 'n/a'}; formats: {', '.join(s['formats'])}.", "",
             "## Accuracy vs float", ""]
    keys = [k for k in s["accuracy"][0] if k not in ("format", "seconds")]  # seconds: accuracy.csv
    lines.append("| format | " + " | ".join(keys) + " |")
    lines.append("|---|" + "---|" * len(keys))
    for row in s["accuracy"]:
        lines.append(f"| {row['format']} | " + " | ".join(_cell(row[k]) for k in keys) + " |")
    perf = s.get("performance_by_format") or {}
    if perf:
        p = next(iter(perf.values()))
        lines += ["", "## Performance per format", "",
                  f"Array {p['array']} {p['dataflow']} at {p['clock_mhz']:g} MHz ({p['timing_mode']} timing).", "",
                  "| format | MACs | cycles | stall | latency (us) | utilization | energy (uJ) | top energy |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, q in perf.items():
            top = sorted(q["energy_pj"].items(), key=lambda kv: -kv[1])[:3]
            lines.append(f"| {name} | {q['macs']:,} | {q['total_cycles']:,} | {q['stall_cycles']:,} | "
                         f"{q['latency_us']:.2f} | {100 * q['utilization']:.1f} % | "
                         f"{q['energy_total_pj'] * 1e-6:.3f} | "
                         + ", ".join(f"{k} {v * 1e-6:.1f}" for k, v in top) + " |")
    lines += ["", f"Wall time {s['wall_seconds']} s.", ""]
    return "\n".join(lines)


def _numerics(name: str, fused_ops: str, numerics: dict) -> str:
    """The executor's numerics of a per-op row; a fused group's: its members' joined by ``+`` (in
    ``fused_ops`` order)."""
    if fused_ops:
        return "+".join(numerics.get(m, "") for m in fused_ops.split("+"))
    return numerics.get(name, "")
