"""The ``hwsim`` command line.

Each command group lives in its own module that exposes ``register(subparsers)``; this module only
assembles them and turns user errors into one line on stderr and exit code 2 (no traceback).
Providers outside the ``hwsim`` core (``hwsim.rtl``, ``hwsim.models``) are imported lazily so the
core keeps working when their optional dependencies are missing.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from hwsim.errors import HwsimError
from hwsim.threads import limit_blas_threads

# Modules providing ``register(subparsers)``; each adds one or more sub-commands.
_COMMAND_PROVIDERS = (
    "hwsim.models.commands",  # run (the main job), model
    "hwsim.formats_cli",
    "hwsim.datapath_demo",
    "hwsim.reports.commands",  # report, sweep
    "hwsim.perf.commands",  # scalesim
    "hwsim.rtl.commands",
)

#: Errors that are the user's to fix: reported as one line, exit code 2.
USER_ERRORS = (HwsimError, ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError)


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (``--help`` still shows usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available sub-command registered."""
    parser = OneLineErrorParser(
        prog="hwsim",
        description="Co-design simulator for quantized neural-network accelerators.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # provider not present in this installation
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        limit_blas_threads()  # HWSIM_THREADS, default one BLAS thread per process (see hwsim.threads)
        result = args.handler(args)
    except USER_ERRORS as exc:
        message = str(exc).strip() or type(exc).__name__
        print(f"hwsim: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `hwsim formats | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
