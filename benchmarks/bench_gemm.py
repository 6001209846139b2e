"""Benchmark: exact GEMM golden model vs numpy's float64 ``A @ B`` on M x K x N = 512 x 768 x 768.

Measured side by side in one run on the same inputs (median of several repeats):

* baseline: numpy float64 ``A @ B`` of the decoded operand values;
* (a) int8 x int8 -> int64 exact GEMM **plus** requantize to int8 (per-channel multipliers, gemmlowp);
* (b) float8_e4m3fn x float8_e4m3fn exact GEMM;
* (c) dint4 x int8 exact GEMM;
* float8_e5m2 x float8_e5m2 exact GEMM (no target: its products span > 53 bits, limb path).

Target (issue 2): ratios (a), (b), (c) at most 2.0.  Run: ``python benchmarks/bench_gemm.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from hwsim import gemm, get_format, quantize_multiplier, requantize


def _paired_medians(base, case, repeats: int) -> tuple[float, float]:
    """Median seconds of ``base`` and ``case``, timed alternately so both see the same machine state."""
    base()  # warm-up (tables, BLAS threads)
    case()
    t_base, t_case = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        case()
        t2 = time.perf_counter()
        t_base.append(t1 - t0)
        t_case.append(t2 - t1)
    return statistics.median(t_base), statistics.median(t_case)


def _codes(rng, name, shape):
    spec = get_format(name)
    codes = rng.integers(0, spec.num_codes, size=shape).astype(spec.code_dtype)
    if spec.kind == "float":
        codes[spec.is_special(codes)] = 0  # finite operands (NaN/Inf rows take a slower merge path)
    return codes


def machine_info() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        info = cfg.get("Build Dependencies", {}).get("blas", {})
        blas = f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # informational only
        pass
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ}
    return [
        f"python {platform.python_version()}, numpy {np.__version__}, BLAS {blas}",
        f"cpu: {cpu}; os.cpu_count()={os.cpu_count()}; affinity={len(os.sched_getaffinity(0))}",
        f"thread env: {threads or 'default'}",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(512, 768, 768), metavar=("M", "K", "N"))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    m, k, n = args.shape
    rng = np.random.default_rng(args.seed)

    a8, b8 = _codes(rng, "int8", (m, k)), _codes(rng, "int8", (k, n))
    a_e4, b_e4 = _codes(rng, "float8_e4m3fn", (m, k)), _codes(rng, "float8_e4m3fn", (k, n))
    a_d4 = _codes(rng, "dint4", (m, k))
    a_e5, b_e5 = _codes(rng, "float8_e5m2", (m, k)), _codes(rng, "float8_e5m2", (k, n))
    mult, shift = quantize_multiplier(rng.uniform(1e-5, 1e-3, n))  # per output channel
    zp = rng.integers(-10, 10, n)

    # numpy baselines on the decoded values of the same codes
    fa8, fb8 = get_format("int8").decode(a8), get_format("int8").decode(b8)
    fa_e4, fb_e4 = get_format("float8_e4m3fn").decode(a_e4), get_format("float8_e4m3fn").decode(b_e4)
    fa_d4 = get_format("dint4").decode(a_d4)
    fa_e5, fb_e5 = get_format("float8_e5m2").decode(a_e5), get_format("float8_e5m2").decode(b_e5)

    def int8_requant():
        acc = gemm(a8, "int8", b8, "int8")
        return requantize(acc, mult, shift, zp, out_format="int8", rounding="gemmlowp")

    cases = [
        ("(a) int8 x int8 -> int64 + requant int8 (per-channel, gemmlowp)", int8_requant,
         lambda: fa8 @ fb8, True),
        ("(b) float8_e4m3fn x float8_e4m3fn exact", lambda: gemm(a_e4, "float8_e4m3fn", b_e4, "float8_e4m3fn"),
         lambda: fa_e4 @ fb_e4, True),
        ("(c) dint4 x int8 exact", lambda: gemm(a_d4, "dint4", b8, "int8"), lambda: fa_d4 @ fb8, True),
        ("float8_e5m2 x float8_e5m2 exact (no target)", lambda: gemm(a_e5, "float8_e5m2", b_e5, "float8_e5m2"),
         lambda: fa_e5 @ fb_e5, False),
    ]

    print(f"hwsim exact GEMM vs numpy float64 A @ B, M x K x N = {m} x {k} x {n}, "
          f"median of {args.repeats} alternating repeats (seconds)")
    print(f"  load average before the run: {os.getloadavg()[0]:.2f} (1 min)")
    for line in machine_info():
        print("  " + line)
    header = f"{'case':<66} {'numpy f64':>10} {'hwsim':>10} {'ratio':>7} {'target':>8}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, fn, base, targeted in cases:
        t_base, t_case = _paired_medians(base, fn, args.repeats)
        ratio = t_case / t_base
        if targeted:
            worst = max(worst, ratio)
        target = "<= 2.0" if targeted else "-"
        flag = "" if not targeted or ratio <= 2.0 else "  EXCEEDS"
        print(f"{name:<66} {t_base:>10.4f} {t_case:>10.4f} {ratio:>7.2f} {target:>8}{flag}")
    print(f"worst targeted ratio: {worst:.2f} ({'PASS' if worst <= 2.0 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
