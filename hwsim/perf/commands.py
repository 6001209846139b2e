"""``hwsim scalesim`` sub-command and :func:`run_workload`, the workload path of ``hwsim run``.

(``hwsim run`` itself is registered by :mod:`hwsim.models.commands`: without arguments it runs the
embedded model.)
"""

from __future__ import annotations

import logging
from pathlib import Path

from hwsim.result_set import result_set

LOG = logging.getLogger(__name__)


def run_workload(arch=None, workload=None, out_dir=None, *, mode: str | None = None, llm: dict | None = None):
    """Simulate ``workload`` on ``arch`` (paths, objects or ``None`` for the packaged defaults).

    ``workload`` ``"llm:NAME"`` (a built-in LLM or a ``config.json`` path) runs
    :func:`hwsim.llm.api.simulate_llm` with the ``llm`` options (``phase``, ``seq_len``, ``kv_len``,
    ``batch``, ``kv_format``). Writes ``per_op.csv``, ``per_op.json`` and ``summary.json`` into
    ``out_dir`` when given and returns the :class:`~hwsim.perf.results.RunResult`. This is the
    workload path of ``hwsim run``.
    """
    from hwsim.perf.api import simulate

    if isinstance(workload, str) and workload.startswith("llm:"):
        from hwsim.llm.api import simulate_llm

        result = simulate_llm(workload[len("llm:"):], arch, mode=mode, **(llm or {}))
    else:
        result = simulate(workload, arch, mode=mode)
    if out_dir is not None:
        with result_set(out_dir, command="hwsim run --workload") as folder:
            result.write(folder)
    return result


def _scalesim(args) -> int:
    from hwsim.perf.scalesim_io import read_config, read_topology, write_reports

    cfg = read_config(args.config)
    topo = read_topology(args.topology, mode=args.mode)
    if cfg.bandwidth_mode == "USER":
        LOG.info("note: %s: InterfaceBandwidth USER is reported with SCALE-Sim's CALC schedule "
                    "(no interface-bandwidth stalls)", args.config)
    reports = write_reports(args.out, cfg, topo, exact_dram=not args.fast_dram)
    print(f"{cfg.run_name}: {cfg.rows}x{cfg.cols} {cfg.dataflow}, {len(reports)} layers ({topo.mode} mode)")
    for r in reports:
        print(f"  {r['name']:<24} M={r['m']:<6} K={r['k']:<6} N={r['n']:<6} cycles={r['total_cycles']:<10} "
              f"util={r['overall_util']:.2f}%")
    print(f"wrote {Path(args.out) / 'COMPUTE_REPORT.csv'}, BANDWIDTH_REPORT.csv and DETAILED_ACCESS_REPORT.csv")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser(
        "scalesim", help="SCALE-Sim 3.0 drop-in: same config/topology in, same reports out",
        description="Read a SCALE-Sim config and topology CSV and write COMPUTE_REPORT.csv, "
                    "BANDWIDTH_REPORT.csv and DETAILED_ACCESS_REPORT.csv computed by hwsim's "
                    "scalesim-compatible model.")
    s.add_argument("config", help="SCALE-Sim .cfg file")
    s.add_argument("topology", help="SCALE-Sim topology CSV (conv or GEMM mode)")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--mode", choices=("conv", "gemm"), help="topology mode (default: detected from header)")
    s.add_argument("--fast-dram", action="store_true",
                   help="skip the DRAM replay: DRAM columns become analytic estimates")
    s.set_defaults(handler=_scalesim)
