"""Start-up of the ``hwsim`` command line, imported first by ``hwsim/__init__.py``.

Ctrl-C while numpy & co. load would otherwise print a traceback from deep inside an import. When the
process is the ``hwsim`` console script or ``python -m hwsim`` (never a library import) a SIGINT handler
prints ``hwsim: interrupted`` and exits 130; :func:`hwsim.cli.main` restores the default handler once it
runs, so later Ctrl-C unwinds normally (result sets clean up). An ignored SIGINT stays ignored.
"""

from __future__ import annotations

import signal
import sys


def _started_as_cli() -> bool:
    """True for the ``hwsim`` console script and ``python -m hwsim`` (never for a library import)."""
    if sys.argv and sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] in ("hwsim", "hwsim.exe"):
        return True
    orig = getattr(sys, "orig_argv", [])
    return "-m" in orig and orig.index("-m") + 1 < len(orig) and orig[orig.index("-m") + 1] == "hwsim"


if _started_as_cli():
    # Ctrl-C while numpy & co. load is one line and exit 130, not a traceback (hwsim.cli.main restores
    # the default handler once it runs).
    def _interrupted_at_start_up(_signum, _frame):
        sys.stderr.write("hwsim: interrupted\n")
        raise SystemExit(130)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # an ignored Ctrl-C stays ignored
        signal.signal(signal.SIGINT, _interrupted_at_start_up)
