"""Benchmark: tokens/s of the bit-exact integer executor vs the float reference, side by side in one run.

For MiniLM-L6 (one batch of held-out sentences) and SmolLM2-135M (one chunk of held-out text), the float
reference (:class:`hwsim.float_executor.FloatBackend`) and the integer executor on a quantized graph
(:class:`hwsim.int_executor.IntegerExecutor`) alternate ``--repeat`` times on the same input, so machine
load drifts hit both; the median times give tokens/s and the ratio integer/float (goal: >= 0.5). Recipes
are applied once, outside the timed loop. Prints the load average before and after.

Usage::

    python benchmarks/bench_executor.py                       # MiniLM w8a8 + SmolLM2 q4_1-a8 and w8a8
    python benchmarks/bench_executor.py --repeat 5 --tokens 256 --sentences 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(task, recipes, tokens: int, repeat: int) -> list[dict]:
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.int_executor import IntegerExecutor
    from hwsim.ptq import apply_recipe

    feeds = task.evaluation[0]
    graphs = {r: apply_recipe(task.graph, r, task.calibration) for r in recipes}
    times = {"float": []} | {r: [] for r in recipes}
    for _ in range(repeat):
        times["float"].append(_time(lambda: run_graph(task.graph, feeds, FloatBackend())))
        for r, g in graphs.items():
            times[r].append(_time(lambda g=g: IntegerExecutor(g).run(feeds)))
    base = statistics.median(times["float"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"model": task.name, "path": name, "median_s": med, "tokens_per_s": tokens / med,
                     "ratio_vs_float": base / med})
    return rows


def blas_rates(repeat: int) -> dict:
    """GFLOP/s of one SmolLM2-sized GEMM (256 x 576 x 1536) in float32 and float64, alternating.

    The exact group epilogue of GGUF Q4_1 layers needs float64 BLAS (its column sums reach ~2^34 quanta,
    beyond float32's 2^24), the float reference runs float32: this ratio caps the Q4_1 path's speed ratio.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(256, 576)), rng.normal(size=(576, 1536))
    ops = {dt: (a.astype(dt), b.astype(dt)) for dt in (np.float32, np.float64)}
    times = {dt: [] for dt in ops}
    for _ in range(repeat * 5):
        for dt, (x, w) in ops.items():
            times[dt].append(_time(lambda x=x, w=w: x @ w))
    flop = 2 * 256 * 576 * 1536
    return {np.dtype(dt).name: flop / statistics.median(ts) / 1e9 for dt, ts in times.items()}


def main() -> None:
    from hwsim.models.run import minilm_task, smollm2_task

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sentences", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=256)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    rows = []
    minilm = minilm_task(args.sentences)
    rows += measure(minilm, ["w8a8"], int(minilm.evaluation[0]["attention_mask"].sum()), args.repeat)
    smol = smollm2_task(1, args.tokens)
    rows += measure(smol, ["q4_1-a8", "w8a8"], args.tokens, args.repeat)
    print(f"{'model':<14} {'path':<10} {'median s':>9} {'tokens/s':>10} {'int/float':>9}")
    for r in rows:
        print(f"{r['model']:<14} {r['path']:<10} {r['median_s']:>9.3f} {r['tokens_per_s']:>10.1f} "
              f"{r['ratio_vs_float']:>9.3f}")
    rates = blas_rates(args.repeat)
    print(f"BLAS (1 thread) 256x576x1536 GEMM: float32 {rates['float32']:.1f} GFLOP/s, "
          f"float64 {rates['float64']:.1f} GFLOP/s (ratio {rates['float64'] / rates['float32']:.2f})")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
