"""The PFPQuant experiment on hwsim's models: integer-only inference, outlier mitigation x RoPE bits x softmax
bits, with the ablation of PFPQuant's three parts (GOM, ORI-LN, RL-SAT).

Rows (all W8A8 per-channel weights, static per-tensor activations, int16 residual stream, integer norms):

* ``float``: the float graph (perplexity / cosine 1.0);
* ``w8a8 float-softmax``: the ``w8a8`` preset (SmoothQuant α 0.7, per-token activations on SmolLM2; softmax,
  SiLU/GELU, RoPE in float64) - the usual "integer GEMMs only" baseline;
* ``{smoothquant, elae, mcom} x {R8, R16} x {S8, S16}``: the ``fixed_point`` mode (no float op after the
  embedding) with RL-SAT (``residual: rl-sat``, :mod:`hwsim.int_residual`) and the outlier mitigation named
  (SmoothQuant α 0.7 on norm outputs, or GOM E-LAE / MCOM with ORI-LN, :mod:`hwsim.ptq.gom`, without data
  shifting: with ``shift: true`` the shifted β of a SmolLM2 RMSNorm leaves the int16 zero-point range of
  the integer norm unit); R = RoPE table bits (SmolLM2 only), S = softmax output bits;
* at R16/S16: ``smoothquant alpha 0.5`` (the paper's default α instead of the presets' 0.7) and
  ``mcom, exp table`` (2^8-entry exponential table instead of the polynomial);
* the ablation at R16/S16 of the full configuration (MCOM + ORI-LN + RL-SAT): ``omit ORI-LN`` (GOM's λ on the
  stream, a vanilla integer norm reading it expanded back, ``gom: {ori_ln: false}``), ``omit RL-SAT``
  (the two-step residual), ``omit GOM`` (no outlier mitigation: λ = 1, so the norm is the vanilla unit;
  RL-SAT kept) and ``omit all three`` (vanilla integer norm, two-step residual).

:func:`study_recipes` lists the recipes, :func:`run_study` runs them and writes ``fixed_point_study_<model>.csv``
and ``.md`` with the metric's spread (SmolLM2: the perplexity's standard error across chunks; MiniLM: the
lowest sentence cosine). A recipe that cannot run records its error in the ``error`` column.
"""

from __future__ import annotations

import time
from pathlib import Path

MITIGATIONS = {
    "smoothquant": [{"smoothquant": {"alpha": 0.7}}],
    "smoothquant-a0.5": [{"smoothquant": {"alpha": 0.5}}],
    "elae": [{"gom": {"method": "elae", "shift": False}}],
    "mcom": [{"gom": {"method": "mcom", "shift": False}}],
    "mcom-vanilla-norm": [{"gom": {"method": "mcom", "shift": False, "ori_ln": False}}],
    "none": [],
}
STATIC_RTN = {"rtn": {"weights": "int8", "granularity": "channel", "activations": "int8",
                      "act_granularity": "tensor", "residual_granularity": "tensor"}}


def fixed_recipe(mitigation: str, rope_bits: int = 16, softmax_bits: int = 16, exp: str = "poly",
                 residual: str = "rl-sat") -> dict:
    """The recipe mapping of one fixed-point configuration."""
    name = (f"fixed-{mitigation}-r{rope_bits}-s{softmax_bits}" + ("-exptable" if exp == "table" else "")
            + ("-twostep" if residual == "two-step" else ""))
    steps = [*MITIGATIONS[mitigation], STATIC_RTN,
             {"fixed_point": {"rope_bits": rope_bits, "softmax_bits": softmax_bits, "exp": exp,
                              "residual": residual}}]
    return {"version": 1, "name": name, "recipe": steps}


def _norm_label(mitigation: str) -> str:
    return "ORI-LN" if mitigation in ("elae", "mcom") else "vanilla"


def study_recipes(model: str) -> list[tuple[dict, dict | str]]:
    """``[(row labels, recipe)]`` of the study for ``model`` (RoPE bits only vary on SmolLM2)."""
    llm = model == "smollm2"
    ropes = (8, 16) if llm else (16,)
    r16 = 16 if llm else ""

    def labels(mitigation: str, norm: str, residual: str, rope, softmax) -> dict:
        return {"mitigation": mitigation, "norm": norm, "residual": residual, "rope_bits": rope,
                "softmax_bits": softmax}

    rows = [(labels("smoothquant (float softmax/act/RoPE)", "vanilla", "two-step", "", "float"), "w8a8")]
    grid = [(r, s) for r in sorted(ropes, reverse=True) for s in (16, 8)]  # the best widths first
    for r, s in grid:
        for mit in ("smoothquant", "elae", "mcom"):
            rows.append((labels(mit, _norm_label(mit), "rl-sat", r if llm else "", s), fixed_recipe(mit, r, s)))
    rows.append((labels("smoothquant alpha 0.5", "vanilla", "rl-sat", r16, 16), fixed_recipe("smoothquant-a0.5")))
    rows.append((labels("mcom, exp table (2^8)", "ORI-LN", "rl-sat", r16, 16),
                 fixed_recipe("mcom", 16, 16, "table")))
    rows.append((labels("ablation: omit ORI-LN (mcom)", "vanilla", "rl-sat", r16, 16),
                 fixed_recipe("mcom-vanilla-norm")))
    rows.append((labels("ablation: omit RL-SAT (mcom)", "ORI-LN", "two-step", r16, 16),
                 fixed_recipe("mcom", residual="two-step")))
    rows.append((labels("ablation: omit GOM (none)", "vanilla", "rl-sat", r16, 16), fixed_recipe("none")))
    rows.append((labels("ablation: omit GOM + ORI-LN + RL-SAT", "vanilla", "two-step", r16, 16),
                 fixed_recipe("none", residual="two-step")))
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
    rows = [{"mitigation": "float", "norm": "float", "residual": "float", "rope_bits": "", "softmax_bits": "float",
             metric: base[metric],
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
        progress(f"{model}: {labels['mitigation']} {labels['norm']} {labels['residual']} "
                 f"R{labels['rope_bits']} S{labels['softmax_bits']}: "
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
