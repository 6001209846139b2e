"""The PFPQuant experiment on hwsim's models: integer-only inference, outlier mitigation x RoPE bits x softmax bits.

Rows (all W8A8 per-channel weights, static per-tensor activations, int16 residual stream, integer norms):

* ``float``: the float graph (perplexity / cosine 1.0);
* ``w8a8 float-softmax``: the ``w8a8`` preset (SmoothQuant α 0.7, per-token activations on SmolLM2; softmax,
  SiLU/GELU, RoPE in float64) - the usual "integer GEMMs only" baseline;
* ``{smoothquant, elae, mcom} x {R8, R16} x {S8, S16}``: the ``fixed_point`` mode (no float op after the
  embedding) with the outlier mitigation named (SmoothQuant α 0.7 on norm outputs, or GOM E-LAE / MCOM
  with ORI-LN, :mod:`hwsim.ptq.gom`, without data shifting: with ``shift: true`` the shifted β of a SmolLM2
  RMSNorm leaves the int16 zero-point range of the integer norm unit); R = RoPE table bits (SmolLM2 only),
  S = softmax output bits;
* ablations at R16/S16: ``smoothquant alpha 0.5`` (the paper's default α instead of the presets' 0.7),
  ``mcom, exp table`` (2^8-entry exponential table instead of the polynomial) and
  ``none (vanilla integer norm)``: no outlier mitigation at all (omits GOM and with it ORI-LN).

:func:`study_recipes` lists the recipes, :func:`run_study` runs them and writes ``fixed_point_study.csv`` and
``fixed_point_study.md`` with the metric's spread (SmolLM2: the perplexity's standard error across chunks;
MiniLM: the lowest sentence cosine). A recipe that cannot run records its error in the ``error`` column.
"""

from __future__ import annotations

import time
from pathlib import Path

MITIGATIONS = {
    "smoothquant": [{"smoothquant": {"alpha": 0.7}}],
    "smoothquant-a0.5": [{"smoothquant": {"alpha": 0.5}}],
    "elae": [{"gom": {"method": "elae", "shift": False}}],
    "mcom": [{"gom": {"method": "mcom", "shift": False}}],
    "none": [],
}
STATIC_RTN = {"rtn": {"weights": "int8", "granularity": "channel", "activations": "int8",
                      "act_granularity": "tensor", "residual_granularity": "tensor"}}


def fixed_recipe(mitigation: str, rope_bits: int = 16, softmax_bits: int = 16, exp: str = "poly") -> dict:
    """The recipe mapping of one fixed-point configuration."""
    name = f"fixed-{mitigation}-r{rope_bits}-s{softmax_bits}" + ("-exptable" if exp == "table" else "")
    steps = [*MITIGATIONS[mitigation], STATIC_RTN,
             {"fixed_point": {"rope_bits": rope_bits, "softmax_bits": softmax_bits, "exp": exp}}]
    return {"version": 1, "name": name, "recipe": steps}


def study_recipes(model: str) -> list[tuple[dict, dict | str]]:
    """``[(row labels, recipe)]`` of the study for ``model`` (RoPE bits only vary on SmolLM2)."""
    ropes = (8, 16) if model == "smollm2" else (16,)
    rows = [({"mitigation": "smoothquant (float softmax/act/RoPE)", "rope_bits": "", "softmax_bits": "float"},
             "w8a8")]
    grid = [(r, s) for r in sorted(ropes, reverse=True) for s in (16, 8)]  # the best widths first
    for r, s in grid:
        for mit in ("smoothquant", "elae", "mcom"):
            rows.append(({"mitigation": mit, "rope_bits": r if model == "smollm2" else "", "softmax_bits": s},
                         fixed_recipe(mit, r, s)))
    rows.append(({"mitigation": "smoothquant alpha 0.5", "rope_bits": 16 if model == "smollm2" else "",
                  "softmax_bits": 16}, fixed_recipe("smoothquant-a0.5", 16, 16)))
    rows.append(({"mitigation": "mcom, exp table (2^8)", "rope_bits": 16 if model == "smollm2" else "",
                  "softmax_bits": 16}, fixed_recipe("mcom", 16, 16, "table")))
    rows.append(({"mitigation": "none (vanilla integer norm; omit GOM + ORI-LN)",
                  "rope_bits": 16 if model == "smollm2" else "", "softmax_bits": 16}, fixed_recipe("none", 16, 16)))
    return rows


def run_study(model: str = "smollm2", chunks: int = 2, tokens: int = 64, out_dir=None, progress=print) -> list[dict]:
    """Run every row of the study; returns the rows (and writes CSV + Markdown to ``out_dir``)."""
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.models.run import minilm_task, quantize_and_score, smollm2_task

    task = smollm2_task(chunks, tokens, calib_chunks=1) if model == "smollm2" else minilm_task(chunks, 8)
    metric = "perplexity" if model == "smollm2" else "cosine_vs_float"
    reference = [run_graph(task.graph, f, FloatBackend()) for f in task.evaluation]
    spread = "perplexity_se" if model == "smollm2" else "cosine_min"
    base = task.score(reference, reference)
    rows = [{"mitigation": "float", "rope_bits": "", "softmax_bits": "float", metric: base[metric],
             spread: base[spread], "seconds": 0.0, "error": ""}]
    for labels, recipe in study_recipes(model):
        t0 = time.perf_counter()
        try:
            _, row, _ = quantize_and_score(task, recipe, reference)
            value, low, error = row[metric], row[spread], ""
        except ValueError as exc:  # a configuration the integer datapath rejects: recorded, not hidden
            value, low, error = float("nan"), float("nan"), str(exc).splitlines()[0][:200]
        rows.append({**labels, metric: value, spread: low, "seconds": round(time.perf_counter() - t0, 1),
                     "error": error})
        progress(f"{model}: {labels['mitigation']} R{labels['rope_bits']} S{labels['softmax_bits']}: "
                 f"{metric} {value:.6g} ({rows[-1]['seconds']} s){' ERROR ' + error if error else ''}")
        if out_dir is not None:  # after every row: a long run leaves a usable partial table
            write_table(rows, Path(out_dir), model, {"chunks": chunks, "tokens": tokens})
    return rows


def write_table(rows: list[dict], out: Path, model: str, setup: dict) -> None:
    """``fixed_point_study_<model>.csv`` and ``.md`` in ``out``."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.to_csv(out / f"fixed_point_study_{model}.csv", index=False)
    what = ", ".join(f"{k} {v}" for k, v in setup.items())
    (out / f"fixed_point_study_{model}.md").write_text(f"# Fixed-point study: {model} ({what})\n\n"
                                                       + markdown_table(rows) + "\n")


def markdown_table(rows: list[dict]) -> str:
    """A GitHub Markdown table of ``rows`` (floats to 5 significant digits)."""
    keys = list(rows[0])

    def cell(v) -> str:
        return f"{v:.5g}" if isinstance(v, float) else str(v).replace("|", "/")

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
