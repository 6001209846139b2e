"""Recipe studies a user can rerun: one command per study, a CSV and a Markdown table out.

A :class:`Study` names a model task (MiniLM or SmolLM2 with its evaluation/calibration sizes) and its rows
(label -> recipe mapping). :func:`run_study` builds the task once, runs the float reference once, and for
every row applies the recipe, scores the integer executor's outputs (:func:`hwsim.models.run.quantize_and_score`)
and prices the same quantized graph on the architecture (:func:`hwsim.models.run.price`, default array with
operator fusion off unless ``--fusion``, :func:`study_arch`; a
graph multiplying a format pair the array's PEs lack is priced on the array with those pairs added,
:mod:`hwsim.perf.derived_arch`, and the row's ``cost_note`` names them)::

    python -m hwsim.models.studies LIST
    python -m hwsim.models.studies c-smollm2-w8a8-static --out results/studies

Studies register themselves in :data:`STUDIES` with :func:`register_study`; the issue-9 studies live in
:mod:`hwsim.models.study_defs`.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.atomic_io import write_text_atomic


@dataclass(frozen=True)
class Study:
    """A named table: ``model`` (``minilm``/``smollm2``), task options and ordered ``rows`` (label, recipe)."""

    name: str
    model: str
    rows: tuple
    task: dict = field(default_factory=dict)
    description: str = ""


STUDIES: dict[str, Study] = {}


def register_study(study: Study) -> Study:
    if study.name in STUDIES:
        raise ValueError(f"study {study.name!r} is already registered")
    STUDIES[study.name] = study
    return study


def _task(study: Study):
    from hwsim.models.run import minilm_task, smollm2_task

    return (minilm_task if study.model == "minilm" else smollm2_task)(**study.task)


def _row(label: str, acc: dict, perf, note: str = "") -> dict:
    row = {"row": label}
    for key in ("cosine_vs_float", "cosine_min", "perplexity", "perplexity_se", "perplexity_float",
                "next_token_agreement"):
        if key in acc:
            row[key] = acc[key]
    if perf is not None:
        s = perf.summary()
        row["cycles"] = int(s["total_cycles"])
        row["energy_uj"] = float(s["energy_total_pj"]) * 1e-6
        row["cost_note"] = note
    else:
        row["cycles"], row["energy_uj"] = None, None
        row["cost_note"] = acc.get("cost_note", "")
    row["seconds"] = acc["seconds"]
    return row


def study_arch(arch=None, *, fusion: bool = False):
    """The array a study prices on: ``arch`` (default: the packaged one) with operator fusion off unless
    ``fusion`` — recipes are compared op by op (each inserted op, e.g. AWQ's ``mul`` or a rotation's
    ``hadamard``, keeps its own row and cost), and the README's study tables reproduce; ``hwsim run``
    prices with fusion on."""
    from hwsim.perf.arch import as_arch

    return as_arch(arch).with_(fusion=fusion)


def run_study(name: str, out_dir=None, arch=None, *, only=None, log=print, fusion: bool = False) -> list[dict]:
    """Run study ``name``; write ``NAME.csv`` and ``NAME.md`` into ``out_dir`` (if given); return the rows.

    Costs are priced on :func:`study_arch` (``arch`` with fusion off unless ``fusion``)."""
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.models.run import price, quantize_and_score
    from hwsim.perf.derived_arch import describe_pairs, with_required_pairs

    if name not in STUDIES:
        raise ValueError(f"study must be one of {', '.join(sorted(STUDIES))}, not {name!r}")
    study = STUDIES[name]
    unknown = sorted(set(only or ()) - {label for label, _ in study.rows})
    if unknown:
        raise ValueError(f"study {name!r}: rows must be among {[label for label, _ in study.rows]}, not {unknown!r}")
    start = time.perf_counter()
    arch = study_arch(arch, fusion=fusion)
    task = _task(study)
    reference = [run_graph(task.graph, feeds, FloatBackend()) for feeds in task.evaluation]
    rows = []
    for label, recipe in study.rows:
        if only is not None and label not in only:
            continue
        qgraph, acc, _ = quantize_and_score(task, {"name": label, **recipe}, reference)
        priced_on, added = with_required_pairs(qgraph, arch)  # pairs the array lacks: priced on arch + pairs
        note = f"{priced_on.name}: + {describe_pairs(added)}" if added else ""
        rows.append(_row(label, acc, price(qgraph, priced_on), note))
        if out_dir is not None:  # after every row: a long study keeps what it has
            write(study, rows, Path(out_dir), time.perf_counter() - start)
        log(f"{name}: {label}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in rows[-1].items() if k != "row"))
    return rows


def markdown(study: Study, rows: list[dict], seconds: float) -> str:
    keys = [k for k in rows[0] if k != "row"] if rows else []
    lines = [f"# {study.name}", "", study.description, "", f"Task: {study.model} {study.task}; "
             f"wall time {seconds:.0f} s.", "", "| row | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for r in rows:
        lines.append(f"| {r['row']} | " + " | ".join(
            _cell(r.get(k, "")) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)


def write(study: Study, rows: list[dict], out: Path, seconds: float) -> None:
    import pandas as pd

    write_text_atomic(out / f"{study.name}.csv", pd.DataFrame(rows).to_csv(index=False))
    write_text_atomic(out / f"{study.name}.md", markdown(study, rows, seconds))


def main(argv=None) -> int:
    import hwsim.models.study_defs
    import hwsim.models.study_weights  # noqa: F401
    from hwsim.models import studies  # the registry (this file may be running as __main__)

    return studies.cli(argv)


def cli(argv=None) -> int:
    from hwsim.threads import limit_blas_threads

    limit_blas_threads()  # one BLAS thread per process unless HWSIM_THREADS says otherwise (BENCHMARKS.md)
    ap = argparse.ArgumentParser(prog="python -m hwsim.models.studies", description=__doc__.splitlines()[0])
    ap.add_argument("study", help="study name, or LIST")
    ap.add_argument("--out", default="results/studies", help="output folder for NAME.csv and NAME.md")
    ap.add_argument("--rows", default=None, help="row labels to run, separated by ';' (default: all)")
    ap.add_argument("--fusion", action="store_true",
                    help="price with operator fusion (default: unfused, op by op, as the README tables)")
    args = ap.parse_args(argv)
    if args.study == "LIST":
        for s in STUDIES.values():
            print(f"{s.name}: {s.description}")
        return 0
    if args.study not in STUDIES:
        print(f"study: expected one of {', '.join(sorted(STUDIES))} or LIST, not {args.study!r}", file=sys.stderr)
        return 2
    only = {r.strip() for r in args.rows.split(";")} if args.rows else None
    run_study(args.study, args.out, only=only, log=lambda m: print(m, flush=True), fusion=args.fusion)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
