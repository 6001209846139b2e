"""Benchmark: co-design sweep throughput (cached/vectorised vs one simulate() per point) and a big sweep.

Prints, in one run:

1. points/s of the cached/vectorised evaluation (:func:`hwsim.sweep_eval.evaluate_chunk`) and of one
   ``simulate()`` per point (:func:`hwsim.sweep_eval.evaluate_chunk_reference`) on the *same* random
   sample of the big grid, each in a fresh process (cold caches), single core, and their ratio;
2. wall time and peak memory (RSS summed over the sweep process and its workers, sampled every 0.2 s) of
   the whole ``hwsim sweep`` command on the big grid: all cores, results store, parquet + CSV + Pareto +
   HTML report.

The grid is MiniLM-L6 (the default workload: 87 ops, 10 distinct) over array rows x cols x dataflow x
weight-buffer size (300 distinct architectures) times the factor axes ``clock_mhz`` and
``energy.technology_scale`` sized to reach ``--points``.

Usage::

    python benchmarks/bench_sweep.py                      # 10^5 points, sample of 300
    python benchmarks/bench_sweep.py --points 1000000     # the 10^6 goal (<= 10 min, <= 2 GiB on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROWS = COLS = [8, 16, 32, 64, 128]
DATAFLOWS = ["ws", "os", "is"]
WEIGHT_KIB = [64, 128, 256, 512]


def grid_spec(points: int) -> dict:
    """The benchmark sweep: 300 architectures x clock x technology-scale factor axes (~``points``)."""
    archs = len(ROWS) * len(COLS) * len(DATAFLOWS) * len(WEIGHT_KIB)
    factors = max(1, math.ceil(points / archs))
    n_clock = max(1, math.isqrt(factors))
    n_tech = math.ceil(factors / n_clock)
    return {"version": 1, "name": f"bench-{points}", "workload": "default", "chunk_size": 5000,
            "grid": {"array.rows": ROWS, "array.cols": COLS, "array.dataflow": DATAFLOWS,
                     "buffers.weight.size_kib": WEIGHT_KIB,
                     "clock_mhz": [200 + 10 * i for i in range(n_clock)],
                     "energy.technology_scale": [round(0.3 + 0.01 * i, 4) for i in range(n_tech)]},
            "objectives": {"latency_us": "min", "energy_uj": "min", "area_mm2": "min"}}


def _measure(kind: str, spec_data: dict, numbers: list, queue) -> None:
    import numpy as np

    from hwsim.sweep import check_points, sweep_from_dict
    from hwsim.sweep_eval import SweepSetup, evaluate_chunk, evaluate_chunk_reference
    from hwsim.sweep_models import resolve_workloads

    spec = sweep_from_dict(spec_data)
    check_points(spec)
    setup = SweepSetup(spec, resolve_workloads(spec, tempfile.mkdtemp()))
    fn = evaluate_chunk if kind == "cached" else evaluate_chunk_reference
    arr = np.asarray(numbers, dtype=np.int64)
    passes = []
    for _ in range(2):  # cold caches, then warm (the mapper's and the sweep's caches filled)
        t0 = time.perf_counter()
        rows = sum(len(fn(setup, arr[i:i + 1000])) for i in range(0, len(arr), 1000))
        passes.append((rows, time.perf_counter() - t0))
    queue.put(passes)


def throughput(spec_data: dict, sample: int, seed: int = 0) -> dict:
    """Points/s of both paths on the same random sample, each in a fresh (spawned) process."""
    import numpy as np

    from hwsim.sweep import sweep_from_dict

    size = sweep_from_dict(spec_data).size
    numbers = np.sort(np.random.default_rng(seed).choice(size, size=min(sample, size), replace=False)).tolist()
    ctx = multiprocessing.get_context("spawn")
    out = {}
    for kind in ("reference", "cached"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_measure, args=(kind, spec_data, numbers, queue))
        proc.start()
        out[kind] = queue.get()
        proc.join()
    return out


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def big_sweep(spec_data: dict, workdir: Path, workers: int | None) -> dict:
    """Run ``hwsim sweep`` on the spec; wall time and peak summed RSS of the process tree."""
    spec_path = workdir / "bench.yaml"
    spec_path.write_text(yaml.safe_dump(spec_data))
    cmd = [sys.executable, "-m", "hwsim", "-q", "sweep", str(spec_path), "--out", str(workdir / "out")]
    if workers:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"hwsim sweep failed:\n{stderr}")
    summary = json.loads((workdir / "out" / "results" / "summary.json").read_text())
    return {"wall_s": wall, "peak_rss": peak[0], "summary": summary, "first_line": stdout.splitlines()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000, help="size of the big sweep (default 10^5)")
    parser.add_argument("--sample", type=int, default=300, help="points timed on both paths (default 300)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes of the big sweep")
    parser.add_argument("--skip-big", action="store_true", help="only the throughput comparison")
    args = parser.parse_args()

    spec = grid_spec(args.points)
    from hwsim.sweep import sweep_from_dict

    size = sweep_from_dict(spec).size
    print(f"sweep benchmark: MiniLM-L6 default workload, {size:,} points = 300 architectures x "
          f"{len(spec['grid']['clock_mhz'])} clocks x {len(spec['grid']['energy.technology_scale'])} technology scales")
    print(f"  load average before the run: {os.getloadavg()[0]:.2f} (1 min); os.cpu_count()={os.cpu_count()}")
    res = throughput(spec, args.sample)
    n = res["reference"][0][0]
    print(f"\n1. throughput on the same {n:,} random points of the grid, one process per path, single core")
    print(f"   {'path':<44}{'cold s':>9}{'points/s':>11}{'warm s':>9}{'points/s':>11}")
    for kind, label in (("reference", "one simulate() per point (reference)"),
                        ("cached", "cached/vectorised chunks (evaluate_chunk)")):
        (_, cold), (_, warm) = res[kind]
        print(f"   {label:<44}{cold:>9.2f}{n / cold:>11,.1f}{warm:>9.3f}{n / warm:>11,.1f}")
    (_, rc), (_, rw) = res["reference"]
    (_, cc), (_, cw) = res["cached"]
    print(f"   ratio cached/reference: cold {rc / cc:,.1f}x, warm {rw / cw:,.1f}x "
          f"(cold: every architecture's mapper searches run once in both paths)")
    if args.skip_big:
        return
    with tempfile.TemporaryDirectory() as tmp:
        big = big_sweep(spec, Path(tmp), args.workers)
    s = big["summary"]
    print(f"\n2. `hwsim sweep` on all {size:,} points ({s['executor']}; store, parquet + CSV, Pareto, HTML report)")
    print(f"   wall time {big['wall_s']:.1f} s  ({size / big['wall_s']:,.0f} points/s end to end; sweep itself "
          f"{s['seconds']:.1f} s)")
    print(f"   peak memory (RSS summed over the process tree, 0.2 s samples): {big['peak_rss'] / 2**20:,.0f} MiB")
    print(f"   rows {s['rows']:,}, Pareto points {s['pareto_points']}, errors {s['errors']}")
    print(f"   load average after the run: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
