"""``hwsim formats``: the table of every registered number format."""

from __future__ import annotations

import argparse
import math


def formats_table():
    """DataFrame with one row per registered format (bits, range, subnormal, NaN/Inf)."""
    import pandas as pd

    from hwsim.formats import get_format, list_formats

    return pd.DataFrame([get_format(name).describe() for name in list_formats()])


def _number(value: float) -> str:
    """Integers in full (int32 limits), everything else to 6 significant digits."""
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return f"{value:.6g}"


def _run(args: argparse.Namespace) -> int:
    table = formats_table()
    if args.kind:
        table = table[table["kind"] == args.kind]
    if args.csv:
        print(table.to_csv(index=False), end="")
    else:
        with __import__("pandas").option_context("display.max_rows", None, "display.width", 200):
            print(table.to_string(index=False, float_format=_number))
    return 0


def register(subparsers) -> None:
    """Add the ``formats`` sub-command."""
    parser = subparsers.add_parser("formats", help="list every registered number format",
                                   description="Print every registered number format: bits, min/max, "
                                               "smallest normal/subnormal, NaN/Inf.")
    parser.add_argument("--kind", choices=["int", "float", "dint", "codebook", "mx"],
                        help="only formats of this kind")
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.set_defaults(handler=_run)
