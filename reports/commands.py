"""``hwsim report RUN_DIR``: figures, Markdown and HTML for a run folder."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from hwsim.progress import stage
    from hwsim.reports.run_report import build_report

    with stage("report"):
        paths = build_report(args.run_dir, args.out)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from hwsim.reports.sweep_report import write_sweep
    from hwsim.sweep import load_sweep, run_sweep

    spec = load_sweep(args.sweep)
    frame = run_sweep(spec)
    paths = write_sweep(frame, args.out, spec.name)
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
