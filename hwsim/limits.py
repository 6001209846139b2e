"""Size budgets: every input that can make work or memory grow is checked here *before* allocating.

Each budget has a default sized for what one machine can do and can be raised with an environment
variable ``HWSIM_MAX_<NAME>`` (an integer; ``_`` digit separators allowed).  A value over its budget
raises :class:`LimitError`, a user error whose one line names the value, the limit and the variable.

The memory budget defaults to half of the smaller of the physical memory and the address-space
limit (``RLIMIT_AS``) of the process, so ``ulimit -v`` tightens it too.
"""

from __future__ import annotations

import os
import resource

from hwsim.errors import HwsimError

#: name -> (default, what it bounds). Defaults of ``None`` are computed (memory).
_BUDGETS: dict[str, tuple[int | None, str]] = {
    "MEMORY_BYTES": (None, "bytes one array or replay may allocate"),
    "DIM": (1 << 31, "a single dimension (rows, M, K, N, channels, ...)"),
    "ARRAY_DIM": (1 << 16, "systolic-array rows or columns"),
    "SWEEP_POINTS": (5_000_000, "points of a sweep grid"),
    "TOPOLOGY_LAYERS": (100_000, "layers of a SCALE-Sim topology (after depthwise splitting)"),
    "REPLAY_ELEMENTS": (1 << 34, "demand-stream elements of one exact SCALE-Sim DRAM replay"),
    "INPUT_BYTES": (4 << 20, "bytes of one text input: YAML, SCALE-Sim cfg or topology"),
    "YAML_NODES": (200_000, "YAML nodes after alias expansion"),
    "YAML_DEPTH": (64, "nesting depth of a YAML document"),
    "MODEL_ITEMS": (1 << 24, "items of one model-file metadata array"),
}


class LimitError(HwsimError, ValueError):
    """An input exceeds a size budget (see :mod:`hwsim.limits`)."""


def _memory_default() -> int:
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        physical = 8 << 30
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        physical = min(physical, soft)
    return max(physical // 2, 64 << 20)


def budget(name: str) -> int:
    """Current value of budget ``name`` (environment override ``HWSIM_MAX_<NAME>`` applied)."""
    default, _ = _BUDGETS[name]
    raw = os.environ.get(f"HWSIM_MAX_{name}")
    if raw is not None:
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise LimitError(f"HWSIM_MAX_{name}: expected a positive integer, not {raw[:40]!r}") from None
        if value < 1:
            raise LimitError(f"HWSIM_MAX_{name}: expected a positive integer, not {raw[:40]!r}")
        return value
    return _memory_default() if default is None else default


def limit_message(name: str, value: int, what: str) -> str:
    """``"<what>: <value> exceeds the limit of <limit> (<meaning>); raise it with HWSIM_MAX_<NAME>=..."``."""
    meaning = _BUDGETS[name][1]
    return (f"{what}: {value:,} exceeds the limit of {budget(name):,} ({meaning}); "
            f"raise it with HWSIM_MAX_{name}=<n> if this machine can take it")


def check(name: str, value: int, what: str) -> int:
    """Return ``value`` if it is within budget ``name``, else raise :class:`LimitError` naming ``what``."""
    if value > budget(name):
        raise LimitError(limit_message(name, value, what))
    return value


def check_bytes(nbytes: int, what: str) -> int:
    """Check an allocation of ``nbytes`` against the memory budget before making it."""
    return check("MEMORY_BYTES", int(nbytes), what)
