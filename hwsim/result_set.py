"""Result sets: a command's output folder is replaced as a whole, or not at all.

Per-file atomic writes (:mod:`hwsim.atomic_io`) keep each file complete, but a command that writes
several files (summary, tables, report) and is interrupted half-way would leave the new summary next to
the previous run's report.  :func:`result_set` gives the command a fresh *staging* folder next to
``--out`` (``.<name>.partial-<pid>-<random>``); when the command succeeds it writes a manifest
(``.hwsim-result.json``: command, files, hwsim version, time) and swaps the staging folder in with one
atomic rename (Linux ``renameat2(RENAME_EXCHANGE)`` when ``--out`` already exists; elsewhere two
renames with Ctrl-C blocked in between). A failed or interrupted command removes its staging folder and
leaves the previous complete set untouched.  A reader refuses a staging folder (:func:`require_complete`).

An existing ``--out`` is replaced only when it is empty, carries the manifest, or holds nothing but
files hwsim writes; a folder with anything else in it is refused rather than deleted.

Nesting: inside an open set, ``result_set(staging_folder)`` yields that same folder and does nothing on
exit, so a library function can open a set for its own writes and still join the command's set.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fnmatch
import json
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from hwsim.errors import HwsimError

__all__ = ["MANIFEST", "is_partial", "require_complete", "result_set"]

#: File written last into every complete result set.
MANIFEST = ".hwsim-result.json"
_PARTIAL = ".partial-"
#: File names a previous hwsim version may have left in an output folder (replaced without a manifest).
_OUR_FILES = ("summary.json", "summary.md", "per_layer.csv", "per_op.csv", "per_op.json", "accuracy.csv",
              "report.html", "report.md", "*.png", "*.svg", "sweep.csv", "sweep.json", "results.csv",
              "results.parquet", "pareto.csv", "*_REPORT.csv", "*.v", "*.json")
_ACTIVE: set[Path] = set()  # staging folders of the sets open in this process


def is_partial(path) -> bool:
    """True for a staging folder of a result set (an incomplete set readers must ignore)."""
    name = Path(path).name
    return name.startswith(".") and _PARTIAL in name


def require_complete(path) -> Path:
    """Return ``path`` if it is a readable result folder, else raise a one-line :class:`HwsimError`."""
    path = Path(path)
    if is_partial(path):
        raise HwsimError(f"{path}: an incomplete result set (a command was interrupted while writing it), "
                         "not a result folder")
    return path


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise HwsimError(f"{out}: exists and is not a folder; give a folder path for the output")
    if (out / MANIFEST).is_file():
        return
    foreign = [p.name for p in out.iterdir()
               if not (p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in _OUR_FILES))]
    if foreign:
        raise HwsimError(f"{out}: exists and holds files hwsim did not write (e.g. {sorted(foreign)[0]!r}); "
                         "give a new or empty output folder")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Delete staging folders of ``out`` left by processes that no longer exist (killed with SIGKILL)."""
    prefix = f".{out.name}{_PARTIAL}"
    for stale in out.parent.glob(f"{prefix}*"):
        try:
            pid = int(stale.name[len(prefix):].split("-", 1)[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2``; False when not available here."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (38, 22, 95):  # ENOSYS, EINVAL (file system without exchange), EOPNOTSUPP
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def _sigint_blocked():
    main = threading.current_thread() is threading.main_thread()
    if main:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if main:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _swap_in(stage: Path, out: Path) -> None:
    with _sigint_blocked():
        if not out.exists():
            os.rename(stage, out)
            return
        if _exchange(stage, out):
            shutil.rmtree(stage, ignore_errors=True)  # now holds the previous set
            return
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{secrets.token_hex(3)}")
        os.rename(out, old)
        os.rename(stage, out)
    shutil.rmtree(old, ignore_errors=True)


def _write_manifest(stage: Path, command: str) -> None:
    from hwsim import __version__

    files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    manifest = {"format": 1, "command": command, "hwsim_version": __version__,
                "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}
    with open(stage / MANIFEST, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def result_set(out_dir, *, command: str = "hwsim", seed_from=None) -> Iterator[Path]:
    """Open a result set for ``out_dir``: yield a staging folder, swap it in when the block succeeds.

    Parameters
    ----------
    out_dir : str or Path
        The output folder (``--out``); created with its parents if missing.
    command : str
        Recorded in the manifest (e.g. ``"hwsim scalesim"``).
    seed_from : str or Path, optional
        A folder whose files are copied into the staging folder first (``hwsim report`` adding a
        report to the run folder it reads: the new set is the run plus its report).

    Yields
    ------
    Path
        The staging folder to write into; it becomes ``out_dir`` when the block exits normally.
        On an exception (or Ctrl-C) it is deleted and ``out_dir`` is left as it was.
    """
    out = Path(out_dir)
    if out.resolve() in _ACTIVE or is_partial(out):  # nested in a set opened by the caller
        yield out
        return
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    stage = out.parent / f".{out.name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir()
    _ACTIVE.add(stage.resolve())
    try:
        if seed_from is not None:
            for item in Path(seed_from).iterdir():
                if item.is_file() and item.name != MANIFEST:
                    shutil.copy2(item, stage / item.name)
        yield stage
        _write_manifest(stage, command)
        _swap_in(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        _ACTIVE.discard(stage.resolve())
