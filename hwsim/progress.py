"""Progress display for long commands: tqdm bars on stderr, silent when nobody is watching.

Entry points, all safe to call from library code (they never print to stdout and never raise
because a terminal is missing):

``track(iterable, desc, total=None, unit="it")``
    Wrap an iterable; a bar advances once per item (per format, per layer batch, per sweep point).
``stage(desc)``
    Context manager for one long step without items (an RTL synthesis, a report); shows a spinner
    line ``desc ...`` and, when it ends, ``desc: done in 1.2 s``. ``stage`` yields a callable
    ``note(text)`` that replaces the line's postfix (e.g. the op being processed).
``counter(desc, total, unit="it")``
    Context manager yielding ``advance(n)``: a bar for work that finishes in batches (sweep chunks).

Display rules (decided once per call by :func:`enabled`):

- shown only when stderr is a terminal (``HWSIM_PROGRESS=1`` forces it, e.g. under ``script``/CI logs
  that want it; ``HWSIM_PROGRESS=0`` silences it);
- never shown when quiet: :func:`set_quiet` (what ``hwsim -q`` calls) or ``HWSIM_QUIET=1``;
- never shown when tqdm is not installed (the command simply runs without a bar).

Example::

    from hwsim.progress import stage, track

    for fmt in track(formats, "formats", unit="format"):
        run_one(fmt)
    with stage("report") as note:
        note("figures")
        ...
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator

_STATE = {"quiet": False}


def set_quiet(quiet: bool = True) -> None:
    """Silence (``True``) or re-enable (``False``) every progress display of this process."""
    _STATE["quiet"] = bool(quiet)


def is_quiet() -> bool:
    """True when progress is silenced by :func:`set_quiet` or ``HWSIM_QUIET=1``."""
    return _STATE["quiet"] or os.environ.get("HWSIM_QUIET", "") not in ("", "0")


def enabled(stream=None) -> bool:
    """Whether a progress display would be shown on ``stream`` (default: ``sys.stderr``) right now."""
    if is_quiet():
        return False
    forced = os.environ.get("HWSIM_PROGRESS", "")
    if forced in ("0", "1"):
        return forced == "1" and _tqdm() is not None
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        tty = False
    return tty and _tqdm() is not None


def _tqdm():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def track(iterable: Iterable, desc: str, total: int | None = None, unit: str = "it") -> Iterator:
    """Iterate over ``iterable`` showing a progress bar named ``desc`` on stderr (when :func:`enabled`).

    Parameters
    ----------
    iterable : iterable
        The items; their order and values are passed through unchanged.
    desc : str
        Short label in front of the bar (e.g. ``"formats"``).
    total : int, optional
        Number of items when ``len(iterable)`` is not available.
    unit : str
        Item name shown in the rate (``"format"``, ``"point"``).
    """
    if not enabled():
        yield from iterable
        return
    tqdm = _tqdm()
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    bar = tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        yield from bar
    finally:
        bar.close()


@contextlib.contextmanager
def stage(desc: str):
    """Show ``desc ...`` with elapsed time while the block runs, then ``desc: done in N s`` (stderr).

    Yields a function ``note(text)`` that sets the line's postfix (a no-op when not shown).
    """
    if not enabled():
        yield _ignore
        return
    tqdm = _tqdm()
    bar = tqdm(total=None, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True,
               bar_format="{desc} ... {elapsed}{postfix}")
    start = time.perf_counter()
    stop = _refresher(bar)
    try:
        yield lambda text: bar.set_postfix_str(str(text), refresh=True)
    finally:
        stop()
        bar.close()
    tqdm.write(f"{desc}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _ignore(_text) -> None:
    return None


def _refresher(bar, period_s: float = 0.5):
    """Refresh ``bar`` every ``period_s`` seconds from a daemon thread (so elapsed time ticks); return stop()."""
    import threading

    done = threading.Event()

    def loop():
        while not done.wait(period_s):
            bar.refresh()

    thread = threading.Thread(target=loop, name="hwsim-progress", daemon=True)
    thread.start()

    def stop():
        done.set()
        thread.join()

    return stop


@contextlib.contextmanager
def counter(desc: str, total: int, unit: str = "it", initial: int = 0):
    """A bar of ``total`` items advanced in steps: yields ``advance(n)`` (items/s and ETA shown by tqdm).

    For work finishing in batches (sweep chunks); silent under the same rules as :func:`track`.
    """
    if not enabled():
        yield _ignore
        return
    bar = _tqdm()(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, leave=False,
                  dynamic_ncols=True, unit_scale=True)
    try:
        yield bar.update
    finally:
        bar.close()
