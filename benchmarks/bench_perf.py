"""Benchmark: hwsim's analytical MAC-array model vs SCALE-Sim 3.0 on the same layers.

Times (1) one per-layer evaluation of ``hwsim.perf`` (counts + cycles + energy: ``evaluate_op``) and
the scalesim-compatible report with and without the exact DRAM replay, median of many runs, and
(2) SCALE-Sim 3.0.0 itself on a few layers, installed into a separate venv created by this script
(``pip install scalesim==3.0.0 numpy==2.3.5``: SCALE-Sim crashes on numpy 2.4). Prints cycles side by
side with their difference and the speed ratio.

Usage::

    python benchmarks/bench_perf.py                       # our timings + SCALE-Sim on 2 small layers
    python benchmarks/bench_perf.py --skip-scalesim       # only our timings
    python benchmarks/bench_perf.py --layers minilm_attn_out:32x32:ws r18_l2_conv1_s2:32x32:ws
    python benchmarks/bench_perf.py --random 40           # + 40 random small cases, reports compared

SCALE-Sim takes 140-460 s and 1-1.7 GB per big GEMM layer on a 2-core machine; pick small layers.
The venv is kept in ``--venv`` (default ``$TMPDIR/hwsim-scalesim-venv``) and reused.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the shared SCALE-Sim reference lives next to the repository: ../shared/reference/scalesim
REF = ROOT.parent / "shared" / "reference" / "scalesim"
EXAMPLES = ROOT / "examples"
DEFAULT_LAYERS = ("minilm_qk_head:32x32:ws", "minilm_attn_out:32x32:os")

_RUNNER = r"""
import sys
from scalesim.scale_sim import scalesim
cfg, topo, out, gemm = sys.argv[1:5]
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=topo,
             input_type_gemm=gemm == "gemm")
s.run_scale(top_path=out)
"""


def _topologies():
    from hwsim.perf.scalesim_io import read_topology

    found = {}
    for name in ("minilm_gemm_topology.csv", "resnet18_conv_topology.csv"):
        path = REF / name if (REF / name).is_file() else EXAMPLES / "workloads" / (
            "scalesim_minilm_gemm.csv" if "minilm" in name else "scalesim_resnet18_conv.csv")
        topo = read_topology(path)
        for layer in topo.layers:
            found[layer.name] = (layer, topo.mode)
    return found


def _config_text(array: str, df: str) -> str:
    rows, cols = array.split("x")
    base = (EXAMPLES / "arch" / "scalesim_sa32x32_ws.cfg").read_text()
    return (base.replace("ArrayHeight:    32", f"ArrayHeight:    {rows}")
            .replace("ArrayWidth:     32", f"ArrayWidth:     {cols}")
            .replace("Dataflow : ws", f"Dataflow : {df}")
            .replace("run_name = sa32x32_ws", f"run_name = sa{array}_{df}"))


def time_ours(layers, repeat: int) -> list[dict]:
    from hwsim.perf.api import energy_table_for, evaluate_op
    from hwsim.perf.arch import arch_from_dict
    from hwsim.perf.scalesim_io import layer_report
    from hwsim.perf.scalesim_io import read_config as read_cfg
    from hwsim.perf.workload import GemmOp

    topos = _topologies()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in layers:
            name, array, df = spec.split(":")
            layer, _ = topos[name]
            cfg_path = Path(tmp) / f"{array}_{df}.cfg"
            cfg_path.write_text(_config_text(array, df))
            cfg = read_cfg(cfg_path)
            r, c = (int(x) for x in array.split("x"))
            arch = arch_from_dict({"array": {"rows": r, "cols": c, "dataflow": df}, "timing": {"mode": "scalesim"}})
            table = energy_table_for(arch)
            m, k, n = layer.mnk
            op = GemmOp(name=name, m=m, k=k, n=n)
            per = timeit.repeat(lambda op=op, arch=arch, table=table: evaluate_op(op, arch, table),
                                number=50, repeat=repeat)
            fast = timeit.repeat(lambda layer=layer, cfg=cfg: layer_report(layer, cfg, exact_dram=False),
                                 number=50, repeat=repeat)
            t0 = time.perf_counter()
            exact = layer_report(layer, cfg, exact_dram=True)
            t_exact = time.perf_counter() - t0
            rows.append({"spec": spec, "m": m, "k": k, "n": n, "cycles": exact["total_cycles"],
                         "eval_us": statistics.median(per) / 50 * 1e6,
                         "report_fast_us": statistics.median(fast) / 50 * 1e6, "report_exact_s": t_exact,
                         "report": exact})
    return rows


def time_reference_rows(repeat: int) -> None:
    """Our timings over every row of the shared reference, against SCALE-Sim's recorded CPU seconds."""
    import pandas as pd

    from hwsim.perf.api import energy_table_for, evaluate_op
    from hwsim.perf.arch import arch_from_dict
    from hwsim.perf.scalesim_io import layer_report, read_config
    from hwsim.perf.workload import GemmOp

    if not (REF / "results.csv").is_file():
        print(f"\nskipped the shared-reference comparison: {REF / 'results.csv'} is absent "
              "(the shared SCALE-Sim reference folder ../shared/reference/scalesim next to the repository)")
        return
    ref = pd.read_csv(REF / "results.csv")
    topos = _topologies()
    ev, fast, exact, same = [], [], [], 0
    for _, row in ref.iterrows():
        layer, _ = topos[row["layer"]]
        cfg = read_config(REF / f"sa{row['array']}_{row['dataflow']}.cfg")
        arch = arch_from_dict({"array": {"rows": cfg.rows, "cols": cfg.cols, "dataflow": cfg.dataflow},
                               "timing": {"mode": "scalesim"}})
        table = energy_table_for(arch)
        m, k, n = layer.mnk
        op = GemmOp(name=layer.name, m=m, k=k, n=n)
        ev.append(min(timeit.repeat(lambda op=op, a=arch, t=table: evaluate_op(op, a, t), number=20,
                                    repeat=repeat)) / 20)
        fast.append(min(timeit.repeat(lambda la=layer, c=cfg: layer_report(la, c, exact_dram=False), number=20,
                                      repeat=repeat)) / 20)
        t0 = time.perf_counter()
        rep = layer_report(layer, cfg, exact_dram=True)
        exact.append(time.perf_counter() - t0)
        keys = ("total_cycles", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes", "dram_ifmap_reads",
                "dram_filter_reads", "dram_ofmap_writes")
        same += all(rep[key] == row[key] for key in keys)
    ss = ref["sim_cpu_s"]
    print(f"\nall {len(ref)} shared reference rows: {same} identical in cycles + SRAM + DRAM counts")
    print(f"  hwsim evaluate_op       median {statistics.median(ev) * 1e6:8.1f} us   max {max(ev) * 1e6:8.1f} us")
    print(f"  scalesim report (fast)  median {statistics.median(fast) * 1e6:8.1f} us   max {max(fast) * 1e6:8.1f} us")
    print(f"  scalesim report (exact) median {statistics.median(exact):8.3f} s    total {sum(exact):.1f} s")
    print(f"  SCALE-Sim 3.0 (recorded) median {ss.median():7.1f} s    total {ss.sum():.0f} s CPU")
    print(f"  speed-up: evaluate_op {ss.median() / statistics.median(ev):,.0f}x (medians), "
          f"exact reports {ss.sum() / sum(exact):,.0f}x (totals)")


def ensure_scalesim_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import scalesim, numpy; assert numpy.__version__ == '2.3.5'"]
    if python.is_file() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "scalesim==3.0.0", "numpy==2.3.5"], check=True)
    return python


def run_scalesim(python: Path, spec: str, workdir: Path) -> dict:
    name, array, df = spec.split(":")
    layer, mode = _topologies()[name]
    work = workdir / spec.replace(":", "_")
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "layer.cfg"
    cfg.write_text(_config_text(array, df))
    topo = work / "topo.csv"
    if mode == "gemm":
        m, k, n = layer.mnk
        topo.write_text(f"Layer, M, N, K,\n{name}, {m}, {n}, {k},\n")
    else:
        topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                        f"Num Filter, Strides,\n{name}, {layer.ifmap_h}, {layer.ifmap_w}, {layer.filter_h}, "
                        f"{layer.filter_w}, {layer.channels}, {layer.num_filters}, {layer.stride_h},\n")
    runner = work / "run.py"
    runner.write_text(_RUNNER)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([str(python), str(runner), str(cfg), str(topo), str(work / "out"), mode], check=True,
                   capture_output=True, cwd=work)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = work / "out" / f"sa{array}_{df}"
    comp = (out / "COMPUTE_REPORT.csv").read_text().splitlines()[1].split(",")
    detail = (out / "DETAILED_ACCESS_REPORT.csv").read_text().splitlines()[1].split(",")
    return {"wall_s": wall, "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "cycles": int(comp[2]), "sram": [int(float(detail[i])) for i in (3, 6, 9)],
            "dram": [int(float(detail[i])) for i in (12, 15, 18)]}


def _random_case(rng, index: int, base_cfg: str) -> tuple[str, str, str]:
    """A random SCALE-Sim config + 2-layer topology (GEMM or conv): (cfg text, topology text, mode)."""
    rows = rng.choice([2, 3, 4, 5, 8, 12, 16, 24, 32, 64])
    cols = rng.choice([2, 3, 4, 6, 8, 16, 20, 32, 64])
    cfg = (base_cfg.replace("ArrayHeight:    32", f"ArrayHeight:    {rows}")
           .replace("ArrayWidth:     32", f"ArrayWidth:     {cols}")
           .replace("IfmapSramSzkB:    256", f"IfmapSramSzkB:    {rng.choice([1, 2, 4, 8, 64, 256])}")
           .replace("FilterSramSzkB:   256", f"FilterSramSzkB:   {rng.choice([1, 2, 3, 16, 256])}")
           .replace("OfmapSramSzkB:    128", f"OfmapSramSzkB:    {rng.choice([1, 2, 4, 32, 128])}")
           .replace("Dataflow : ws", f"Dataflow : {rng.choice(['os', 'ws', 'is'])}")
           .replace("run_name = sa32x32_ws", f"run_name = rand{index}"))
    if index % 2 == 0:
        lines = ["Layer, M, N, K,"] + [f"g{j}, {rng.randint(1, 200)}, {rng.randint(1, 150)}, {rng.randint(1, 300)},"
                                      for j in range(2)]
        return cfg, "\n".join(lines) + "\n", "gemm"
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
    for j in range(2):
        fh, fw = rng.randint(1, 5), rng.randint(1, 5)
        lines.append(f"c{j}, {rng.randint(fh, 20)}, {rng.randint(fw, 20)}, {fh}, {fw}, {rng.randint(1, 12)}, "
                     f"{rng.randint(1, 40)}, {rng.randint(1, 3)},")
    return cfg, "\n".join(lines) + "\n", "conv"


def check_random(python: Path, count: int, seed: int) -> int:
    """Run SCALE-Sim on ``count`` random small cases; compare all three reports byte for byte."""
    import random

    from hwsim.perf.scalesim_io import read_config, read_topology, write_reports

    rng = random.Random(seed)
    base = (EXAMPLES / "arch" / "scalesim_sa32x32_ws.cfg").read_text()
    same = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            cfg_text, topo_text, mode = _random_case(rng, i, base)
            work = Path(tmp) / f"rand{i}"
            work.mkdir()
            (work / "c.cfg").write_text(cfg_text)
            (work / "t.csv").write_text(topo_text)
            (work / "run.py").write_text(_RUNNER)
            subprocess.run([str(python), "run.py", "c.cfg", "t.csv", "ss", mode], check=True, capture_output=True,
                           cwd=work)
            write_reports(work / "ours", read_config(work / "c.cfg"), read_topology(work / "t.csv", mode=mode))
            ok = all((work / "ss" / f"rand{i}" / rep).read_text() == (work / "ours" / rep).read_text()
                     for rep in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"))
            same += ok
            if not ok:
                print(f"  case {i} differs:\n{cfg_text}\n{topo_text}")
    print(f"\nrandom cases (seed {seed}): {same}/{count} with byte-identical COMPUTE, BANDWIDTH and "
          "DETAILED_ACCESS reports")
    return same


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", nargs="+", default=list(DEFAULT_LAYERS), help="name:RxC:dataflow ...")
    ap.add_argument("--skip-scalesim", action="store_true")
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "hwsim-scalesim-venv")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="also run N random small configs/layers through SCALE-Sim and compare reports")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    ours = time_ours(args.layers, args.repeat)
    print(f"{'layer':<32} {'M':>5} {'K':>5} {'N':>5} {'cycles':>9} {'eval us':>8} {'report us':>9} "
          f"{'exact-DRAM s':>12}")
    for r in ours:
        print(f"{r['spec']:<32} {r['m']:>5} {r['k']:>5} {r['n']:>5} {r['cycles']:>9} {r['eval_us']:>8.1f} "
              f"{r['report_fast_us']:>9.1f} {r['report_exact_s']:>12.3f}")
    print(f"median per-layer evaluation: {statistics.median(r['eval_us'] for r in ours):.1f} us (budget 200 us)")
    time_reference_rows(max(3, args.repeat // 3))
    if args.skip_scalesim:
        return 0
    python = ensure_scalesim_venv(args.venv)
    print("\nSCALE-Sim 3.0.0 vs hwsim (scalesim mode)")
    print(f"{'layer':<32} {'SS cycles':>9} {'ours':>9} {'diff':>5} {'SRAM r/w equal':>14} {'DRAM equal':>10} "
          f"{'SS cpu s':>9} {'SS wall s':>9} {'speed-up (eval)':>16} {'speed-up (exact)':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in ours:
            ss = run_scalesim(python, r["spec"], Path(tmp))
            rep = r["report"]
            sram = [rep["sram_ifmap_reads"], rep["sram_filter_reads"], rep["sram_ofmap_writes"]]
            dram = [rep["dram_ifmap_reads"], rep["dram_filter_reads"], rep["dram_ofmap_writes"]]
            print(f"{r['spec']:<32} {ss['cycles']:>9} {r['cycles']:>9} {r['cycles'] - ss['cycles']:>5} "
                  f"{sram == ss['sram']!s:>14} {dram == ss['dram']!s:>10} {ss['cpu_s']:>9.2f} {ss['wall_s']:>9.2f} "
                  f"{ss['wall_s'] / (r['eval_us'] * 1e-6):>16,.0f} {ss['wall_s'] / r['report_exact_s']:>16,.0f}")
    if args.random:
        check_random(python, args.random, args.seed)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
