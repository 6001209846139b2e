"""Benchmark: wall time of a ``hwsim`` command at two git revisions, side by side in one run.

Each revision is exported with ``git archive`` and installed (``pip install --no-deps --target``) into
its own folder, so both run from a clean, identical layout with the same venv's dependencies; the
command then alternates between the two revisions ``--repeat`` times (A, B, A, B, ...) so machine load
drifts hit both equally. Prints every wall time, the medians, their ratio and the load average.

Usage::

    python benchmarks/bench_run.py --baseline 7c17426 --candidate HEAD            # default `hwsim run`
    python benchmarks/bench_run.py --baseline 7c17426 --repeat 7 -- run --model smollm2
    python benchmarks/bench_run.py --baseline HEAD --baseline-env HWSIM_THREADS=all    # BLAS threads
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def install_revision(ref: str, dest: Path) -> Path:
    """Export ``ref`` and install it (no dependencies) into ``dest/site``; return that folder."""
    src, site = dest / "src", dest / "site"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(src)], check=True)
    return site


def run_once(site: Path, args: list[str], out: Path, extra_env: dict | None = None) -> float:
    """Wall seconds of ``python -m hwsim ARGS --out OUT`` with ``site`` first on the path.

    Runs in ``out``'s parent folder: ``python -m`` puts the working directory first on ``sys.path``, so
    running inside a checkout would import that checkout's ``hwsim`` instead of the revision's.
    """
    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": str(site)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hwsim", *args, "--out", str(out)], env=env, capture_output=True,
                          text=True, check=False, cwd=out.parent)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"hwsim {' '.join(args)} failed at {site}:\n{done.stderr[-2000:]}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision A (e.g. the commit before a change)")
    parser.add_argument("--candidate", default="HEAD", help="git revision B (default HEAD)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per revision (default 5)")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="K=V",
                        help="environment variable for the baseline runs only (repeatable)")
    parser.add_argument("command", nargs="*", default=["run"], help="hwsim arguments (default: run)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hwsim-bench-run-") as tmp:
        tmp = Path(tmp)
        refs = (args.baseline, args.candidate)
        labels = [args.baseline + "".join(f" {e}" for e in args.baseline_env), args.candidate]
        if labels[0] == labels[1]:
            labels[1] += " (candidate)"
        sites = {label: install_revision(ref, tmp / f"rev{i}")
                 for i, (label, ref) in enumerate(zip(labels, refs, strict=True))}
        envs = {labels[0]: dict(e.split("=", 1) for e in args.baseline_env), labels[1]: {}}
        for ref, site in sites.items():
            where = subprocess.run([sys.executable, "-c", "import hwsim.models, sys; print(hwsim.models.__file__)"],
                                   env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp, capture_output=True,
                                   text=True, check=True).stdout.strip()
            if not where.startswith(str(site)):
                raise SystemExit(f"{ref}: hwsim imported from {where}, not from {site}")
        for label, site in sites.items():  # warm-up (byte-compilation, page cache), not timed
            run_once(site, args.command, tmp / "warm", envs[label])
        load_before = os.getloadavg()
        times: dict[str, list[float]] = {ref: [] for ref in sites}
        for i in range(args.repeat):
            for label, site in sites.items():
                times[label].append(run_once(site, args.command, tmp / f"out{i}", envs[label]))
        load_after = os.getloadavg()
    print(f"hwsim {' '.join(args.command)}: {args.repeat} runs per revision, alternating; "
          f"{os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    medians = {}
    for ref, values in times.items():
        medians[ref] = statistics.median(values)
        print(f"  {ref:<28} median {medians[ref]:6.2f} s   runs " + " ".join(f"{v:.2f}" for v in values))
    base, cand = medians[labels[0]], medians[labels[1]]
    print(f"  speed-up {labels[0]} -> {labels[1]}: {base / cand:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
