"""``hwsim report RUN_DIR``: figures, Markdown and HTML for a run folder."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from hwsim.reports.run_report import build_report

    paths = build_report(args.run_dir, args.out)
    for name, path in paths.items():
        print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``report`` sub-command."""
    parser = subparsers.add_parser("report", help="energy/latency report (PNG, Markdown, HTML) of a run folder",
                                   description="Build cycles/energy figures, report.md and a self-contained "
                                               "report.html from a folder written by 'hwsim run --out'.")
    parser.add_argument("run_dir", help="folder holding per_op.csv and summary.json")
    parser.add_argument("--out", help="output folder (default: the run folder)")
    parser.set_defaults(handler=_run)
