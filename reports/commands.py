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
    from hwsim.reports.sweep_report import write_sweep
    from hwsim.result_set import result_set
    from hwsim.sweep import load_sweep, run_sweep

    spec = load_sweep(args.sweep)
    frame = run_sweep(spec)
    with result_set(args.out, command="hwsim sweep") as folder:
        paths = {name: Path(args.out) / path.relative_to(folder)
                 for name, path in write_sweep(frame, folder, spec.name).items()}
    columns = [c for c in frame.columns if c in {k for k, _ in spec.grid}]
    columns += ["total_cycles", "latency_us", "energy_total_uj", "tops_per_w", "utilization", "pareto"]
    print(f"sweep {spec.name}: {len(frame)} points")
    print(frame[columns].to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``report`` and ``sweep`` sub-commands."""
    parser = subparsers.add_parser("report", help="energy/latency report (PNG, Markdown, HTML) of a run folder",
                                   description="Build cycles/energy figures, report.md and a self-contained "
                                               "report.html from a folder written by 'hwsim run --out'.")
    parser.add_argument("run_dir", help="folder holding per_op.csv and summary.json")
    parser.add_argument("--out", help="output folder (default: the run folder)")
    parser.set_defaults(handler=_run)

    sweep = subparsers.add_parser("sweep", help="design-space sweep over architecture parameters",
                                  description="Simulate every point of a sweep YAML grid; write sweep.csv, "
                                              "sweep.json and a latency-energy Pareto plot.")
    sweep.add_argument("sweep", help="sweep YAML (see examples/sweeps/)")
    sweep.add_argument("--out", default="hwsim_out/sweep", help="output folder (default: hwsim_out/sweep)")
    sweep.set_defaults(handler=_sweep)
