"""``hwsim report RUN_DIR``: figures, Markdown and HTML for a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from hwsim.progress import stage
    from hwsim.reports.run_report import build_report
    from hwsim.result_set import require_complete, result_set

    run_dir = require_complete(args.run_dir)
    out = Path(args.out) if args.out else run_dir
    in_place = out.resolve() == run_dir.resolve()
    # in place, the new set is the run plus its report: a failed report leaves the previous set whole
    seed = run_dir if in_place else None
    with stage("report"), result_set(out, command="hwsim report", seed_from=seed) as folder:
        paths = build_report(run_dir, folder)  # read the run where the user put it: errors name that folder
    for path in paths.values():
        print(f"wrote {out / path.relative_to(folder)}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import json

    from hwsim.errors import HwsimError
    from hwsim.reports.sweep_report import pareto_flags, sort_by_objectives, write_sweep
    from hwsim.result_set import result_set
    from hwsim.sweep import load_sweep, sweep_from_dict
    from hwsim.sweep_run import run_sweep

    if args.resume:
        out = Path(args.resume)
        meta = out / "store" / "sweep.json"
        if not meta.is_file():
            raise HwsimError(f"--resume {out}: not a sweep folder (no store/sweep.json)")
        data = json.loads(meta.read_text())["spec"]
        spec = sweep_from_dict(data["raw"], source=str(meta), base_dir=Path(data["base_dir"]) if data["base_dir"]
                               else None)
    elif args.sweep:
        out = Path(args.out)
        spec = load_sweep(args.sweep)
    else:
        raise HwsimError("hwsim sweep: give a sweep YAML or --resume DIR")
    run = run_sweep(spec, out, workers=args.workers, dask=args.dask, reference=args.reference)
    frame = run.frame
    frame["pareto"] = pareto_flags(frame, spec.objectives)
    errors = int((frame["error"].fillna("") != "").sum()) if "error" in frame.columns else 0
    planned = spec.search.get("samples", spec.size) if spec.search["method"] == "random" else spec.size
    summary = {"name": spec.name, "search": spec.search["method"], "grid_points": spec.size, "rows": len(frame),
               "evaluated_this_run": run.evaluated, "chunks_resumed": run.skipped_chunks, "errors": errors,
               "dropped_by_constraints": max(0, min(planned, spec.size) - len(frame))
               if spec.search["method"] != "nsga2" else None,
               "pareto_points": int(frame["pareto"].sum()), "objectives": spec.objectives,
               "seconds": round(run.seconds, 2), "executor": f"dask {args.dask}" if args.dask else
               f"{args.workers or 'all'} local processes"}
    with result_set(out / "results", command="hwsim sweep") as folder:
        paths = {name: out / "results" / path.relative_to(folder)
                 for name, path in write_sweep(frame, folder, spec, summary).items()}
    print(f"sweep {spec.name}: {len(frame)} points ({run.evaluated} evaluated now, {run.skipped_chunks} chunks "
          f"resumed), {summary['dropped_by_constraints'] or 0} dropped by constraints, {errors} errors, "
          f"{summary['pareto_points']} on the Pareto front, {run.seconds:.1f} s")
    front = frame[frame["pareto"]]
    columns = [c for c in ("model", "recipe", *spec.keys) if c in frame.columns]
    columns = list(dict.fromkeys(columns + [c for c in spec.objectives if c in frame.columns]))
    if len(front):
        print(sort_by_objectives(front, spec.objectives)[columns].head(40).to_string(
            index=False, float_format=lambda v: f"{v:,.4g}"))
    if errors:
        first = frame.loc[frame["error"].fillna("") != "", "error"].iloc[0]
        print(f"first error: {first}")
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def register(subparsers) -> None:
    """Add the ``report`` and ``sweep`` sub-commands."""
    parser = subparsers.add_parser("report", help="energy/latency report (PNG, Markdown, HTML) of a run folder",
                                   description="Build cycles/energy figures, report.md and a self-contained "
                                               "report.html from a folder written by 'hwsim run --out'.")
    parser.add_argument("run_dir", help="folder holding per_op.csv and summary.json")
    parser.add_argument("--out", help="output folder (default: the run folder)")
    parser.set_defaults(handler=_run)

    sweep = subparsers.add_parser(
        "sweep", help="co-design sweep over models, recipes and architecture parameters",
        description="Evaluate a sweep YAML (grid, random or NSGA-II over model/recipe/arch axes): accuracy, "
                    "latency, energy and area per point, streamed to DIR/store (resumable: re-run or --resume); "
                    "writes DIR/results/{results.parquet,results.csv,pareto.csv,report.html,summary.json}.")
    sweep.add_argument("sweep", nargs="?", help="sweep YAML (see examples/sweeps/)")
    sweep.add_argument("--out", default="hwsim_out/sweep", help="sweep folder (default: hwsim_out/sweep)")
    sweep.add_argument("--resume", metavar="DIR", help="continue the sweep stored in DIR (its own spec)")
    sweep.add_argument("--workers", type=_positive_int, default=None,
                       help="local worker processes (default: all cores; 1 = no pool)")
    sweep.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster (scheduler address, e.g. "
                                                         "tcp://10.0.0.5:8786; needs hwsim[sweep] on the workers)")
    sweep.add_argument("--reference", action="store_true",
                       help="one simulate() per point instead of the cached/vectorised evaluation (slow; same table)")
    sweep.set_defaults(handler=_sweep)
