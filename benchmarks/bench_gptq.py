"""Benchmark: GPTQ on every linear of SmolLM2-135M (30 layers x 7 linears = 210 weights).

Times (wall clock and this process's CPU time), in one process on this machine:

* the calibration pass collecting ``xtx`` (float run of the full model over the calibration chunks);
* the ``gptq`` step alone (Hessian factorisation and error feedback for the 210 linears; the tied
  ``output`` head is kept as stored, as in the studies);
* the round-to-nearest step on the same linears, for scale.

Target (issue 9): the whole GPTQ quantization (calibration included) of SmolLM2 within 10 minutes.
Run: ``python benchmarks/bench_gptq.py [--weights int4 --granularity channel] [--calib-chunks 4]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="int4")
    ap.add_argument("--granularity", default="channel", choices=("channel", "group"))
    ap.add_argument("--group-size", type=int, default=None)
    ap.add_argument("--calib-chunks", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=256)
    args = ap.parse_args(argv)

    from hwsim.calibration import calibrate
    from hwsim.threads import limit_blas_threads

    limit_blas_threads()  # as the hwsim CLI: one BLAS thread unless HWSIM_THREADS says otherwise
    from hwsim.models.run import smollm2_task
    from hwsim.ptq import load_recipe

    params = {"weights": args.weights, "granularity": args.granularity, "group_size": args.group_size}
    keep = [{"match": "output", "gptq": {"weights": "keep"}}]
    c0 = time.process_time()
    t0 = time.perf_counter()
    task = smollm2_task(chunks=1, tokens=args.tokens, calib_chunks=args.calib_chunks)
    t1, c1 = time.perf_counter(), time.process_time()
    stats = calibrate(task.graph, task.calibration, ["xtx"])
    t2, c2 = time.perf_counter(), time.process_time()
    gptq = load_recipe({"recipe": [{"gptq": params}], "overrides": keep}).steps[0]
    q = gptq.apply(task.graph, stats)
    t3, c3 = time.perf_counter(), time.process_time()
    rtn = load_recipe({"recipe": [{"rtn": {**params, "activations": None}}],
                       "overrides": [{"match": "output", "rtn": {"weights": "keep"}}]}).steps[0]
    rtn.apply(task.graph, stats)
    t4, c4 = time.perf_counter(), time.process_time()
    report = q.meta["gptq"]
    better = sum(e["error"] <= e["rtn_error"] for e in report.values())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"SmolLM2-135M, {len(report)} linears, {args.weights}/{args.granularity}{args.group_size or ''}, "
          f"calibration {args.calib_chunks} x {args.tokens} tokens")
    print("                           wall s   CPU s (this process; the machine is shared)")
    print(f"model load + graph        {t1 - t0:7.1f} {c1 - c0:7.1f}")
    print(f"calibration (xtx)         {t2 - t1:7.1f} {c2 - c1:7.1f}")
    print(f"gptq step                 {t3 - t2:7.1f} {c3 - c2:7.1f}")
    print(f"rtn step (same weights)   {t4 - t3:7.1f} {c4 - c3:7.1f}")
    print(f"total gptq (cal + step)   {t3 - t1:7.1f} {c3 - c1:7.1f}   target 600 s")
    print(f"layers where GPTQ's proxy output error <= RTN's: {better}/{len(report)}")


if __name__ == "__main__":
    main()
