"""``hwsim model export``: quantize an embedded model with a recipe and write it as a checkpoint or ONNX model.

:func:`export_model` quantizes MiniLM or SmolLM2 with a recipe (:func:`hwsim.ptq.apply_recipe`), checks that
every linear can be written in the layout *before* anything is written, then writes into a result set (the
output folder appears complete or not at all, :mod:`hwsim.result_set`):

- ``gptq`` / ``awq`` / ``pack-quantized``: a checkpoint folder (:mod:`hwsim.models.checkpoint_export`), read
  back and executed on a held-out batch; the run is refused unless the re-imported model's outputs equal the
  stored model's bit for bit. ``export.json`` records the summary and the cosine between the stored model
  (float16 scales) and the quantized graph.
- ``onnx``: ``linears.onnx`` (:mod:`hwsim.models.onnx_export`), run by onnxruntime on the held-out batch's
  linear inputs; ``export.json`` holds the per-linear check (codes, accumulators, output errors).
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import HwsimError

LAYOUT_CHOICES = ("gptq", "awq", "pack-quantized", "onnx")


def _task(model: str, sentences: int, tokens: int, layers: int | None):
    from hwsim.models.run import minilm_task, smollm2_task

    if model == "minilm":
        return minilm_task(sentences=sentences or 4, calib_sentences=8, layers=layers)
    return smollm2_task(chunks=sentences or 2, tokens=tokens, layers=layers, calib_chunks=2)


def _checkpoint(task, qgraph, layout, recipe, folder) -> dict:
    """Write the checkpoint, re-import it, require bit-identical execution; score graph and stored model."""
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.int_executor import IntegerExecutor
    from hwsim.models import checkpoint_export as ce

    summary = ce.export_checkpoint(qgraph, layout, folder, recipe=recipe)
    back = IntegerExecutor(ce.import_checkpoint(folder, qgraph))
    stored = IntegerExecutor(ce.stored_graph(qgraph, layout))
    out_back = [back.run(f) for f in task.evaluation]
    out_stored = [stored.run(f) for f in task.evaluation]
    if not all(np.array_equal(a[k], b[k]) for a, b in zip(out_back, out_stored, strict=True) for k in a):
        raise HwsimError(f"{folder}: the re-imported {layout} checkpoint does not execute like the stored model")
    ref = [run_graph(task.graph, f, FloatBackend()) for f in task.evaluation]
    graph_score = task.score(ref, [IntegerExecutor(qgraph).run(f) for f in task.evaluation])
    summary.update({"reimport_identical": True, "score_graph": graph_score,
                    "score_stored": task.score(ref, out_stored)})
    return summary


def _onnx(qgraph, folder, feeds) -> dict:
    from hwsim.models import onnx_export as oe

    path = folder / "linears.onnx"
    summary = oe.export_onnx_linears(qgraph, path)
    summary["path"] = path.name
    summary["check"] = oe.check_onnx_export(qgraph, path, feeds)
    return summary


def export_model(model: str, recipe, layout: str, out, *, layers: int | None = None, sentences: int | None = None,
                 tokens: int = 64) -> dict:
    """Quantize ``model`` with ``recipe`` and export it to folder ``out`` in ``layout``; returns the summary."""
    from hwsim.atomic_io import write_json_atomic
    from hwsim.models import checkpoint_export as ce
    from hwsim.models import onnx_export as oe
    from hwsim.ptq import apply_recipe, load_recipe
    from hwsim.result_set import result_set

    if layout not in LAYOUT_CHOICES:
        raise HwsimError(f"--layout must be one of {', '.join(LAYOUT_CHOICES)}, not {layout!r}")
    recipe = load_recipe(recipe)
    task = _task(model, sentences, tokens, layers)
    qgraph = apply_recipe(task.graph, recipe, task.calibration)
    if layout == "onnx":
        oe.exportable_linears(qgraph)  # refuse before the output folder is touched
    else:
        ce.check_exportable(qgraph, layout)
    with result_set(out, command="hwsim model export") as folder:
        summary = _onnx(qgraph, folder, task.evaluation[0]) if layout == "onnx" else \
            _checkpoint(task, qgraph, layout, recipe, folder)
        summary.update({"model": task.name, "recipe": recipe.name, "layers": layers})
        write_json_atomic(folder / "export.json", summary)
    return summary


def _score(score: dict) -> str:
    if "perplexity" in score:
        return f"perplexity {score['perplexity']:.2f}"
    return f"cosine vs float {score['cosine_vs_float']:.4f} (min {score['cosine_min']:.4f})"


def summary_text(s: dict, out) -> str:
    """A few lines for the terminal."""
    head = f"{s['model']} / {s['recipe']} -> {s.get('layout', 'onnx')} in {out}"
    if "check" not in s:
        kind = "symmetric" if s["symmetric"] else "asymmetric"
        return "\n".join([head, f"  {s['linears']} linears, {s['bits']}-bit, group {s['group_size']}, {kind}; "
                                f"{s['float_tensors']} float tensors",
                          f"  float16 scales: {s['scales_rounded']}/{s['scales_total']} rounded (max relative "
                          f"change {s['max_scale_rel_change']:.2e})",
                          f"  {_score(s['score_graph'])} (graph) -> {_score(s['score_stored'])} (as stored)",
                          "  re-imported checkpoint executes bit-identically to the stored model: yes"])
    c = s["check"]
    return "\n".join([head, f"  {s['linears']} linears, {s['nodes']} nodes, opset {s['opset']}; onnxruntime "
                            f"{c['onnxruntime']} (graph optimisations off)",
                      f"  activation codes equal: {c['codes_equal']}; MatMulInteger accumulators equal hwsim's: "
                      f"{c['accumulators_equal']}",
                      f"  max relative output error: integer path {c['max_y_rel_error']:.1e}, QDQ path "
                      f"{c['max_y_qdq_rel_error']:.1e}"])
