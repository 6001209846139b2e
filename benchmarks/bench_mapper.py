"""Benchmark: the tiling mapper's search time per GEMM shape, and whole LLM steps through the perf model.

(1) ``best_mapping`` uncached (the vectorised search) and ``best_mapping_reference`` (the plain loop)
for LLM-sized GEMMs on the default 32x32 arch and the 128x128 / 1 MiB LLM arch; (2) ``simulate_llm``
for LLaMA-2-7B prefill (S = 2048) and decode (L = 2048) from a cold mapper cache.

Usage::

    python benchmarks/bench_mapper.py [--repeat 3] [--reference]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LLM_ARCH = ROOT / "examples" / "arch" / "llm_int8_128x128_ws_1mib.yaml"
SHAPES = [(2048, 4096, 4096), (2048, 4096, 11008), (2048, 128, 2048), (1, 4096, 4096), (128, 384, 1536),
          (16384, 4096, 14336)]


def _median_s(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    from hwsim.llm.api import simulate_llm
    from hwsim.perf.arch import as_arch
    from hwsim.perf.mapper import best_mapping, best_mapping_reference
    from hwsim.perf.timing import OpCounts, mapper_problem
    from hwsim.perf.workload import GemmOp

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time the plain-loop search")
    args = ap.parse_args(argv)
    print(f"{'arch':<10} {'M x K x N':<22} {'search ms':>10} {'loop ms':>9}  mapping")
    for arch in (as_arch(None), as_arch(LLM_ARCH)):
        for m, k, n in SHAPES:
            p = mapper_problem(arch, GemmOp(name="g", m=m, k=k, n=n), OpCounts(name="g", kind="gemm"))
            fast = _median_s(lambda p=p: best_mapping.__wrapped__(p), args.repeat)
            slow = _median_s(lambda p=p: best_mapping_reference(p), 1) if args.reference else float("nan")
            print(f"{arch.array.rows}x{arch.array.cols:<6} {f'{m}x{k}x{n}':<22} {fast * 1e3:>10.1f} "
                  f"{slow * 1e3:>9.1f}  {best_mapping.__wrapped__(p).describe()}")
    for phase, kw in (("prefill", {"seq_len": 2048}), ("decode", {"kv_len": 2048})):
        best_mapping.cache_clear()
        start = time.perf_counter()
        simulate_llm("llama-2-7b", LLM_ARCH, phase=phase, **kw)
        print(f"simulate_llm llama-2-7b {phase}: {time.perf_counter() - start:.2f} s (cold mapper cache)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
