"""Atomic file output: a result file is either complete or absent, never half-written.

Each writer writes to a temporary file in the destination folder and renames it over the target
(``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create parent folders; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path, obj, **dump_options) -> Path:
    """Serialise ``obj`` as JSON (indent 1, numpy scalars converted) and write it atomically."""
    dump_options.setdefault("indent", 1)
    dump_options.setdefault("default", _jsonable)
    return write_text_atomic(path, json.dumps(obj, **dump_options) + "\n")


def _jsonable(x):
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"cannot serialise to JSON, not {x!r}")
