"""Collect every problem of a YAML/dict configuration, each with its dotted key path.

Architecture, workload and energy-table loaders walk their mapping with a :class:`Checker`, which never
raises on the first problem: it records ``"<path>: expected ..., not <value>"`` lines and the loader
raises one :class:`hwsim.errors.ConfigError` with all of them at the end (DESIGN.md section 3).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any

from hwsim.errors import ConfigError, short_repr
from hwsim.limits import budget
from hwsim.safe_yaml import load_yaml_mapping

__all__ = ["Checker", "load_yaml_mapping"]

_MISSING = object()


def _hint(value, choices) -> str:
    """`` (did you mean 'x'?)`` for a close match of a mistyped key or choice, else ``""``."""
    if not isinstance(value, str) or len(value) > 100:
        return ""
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Checker:
    """Problem collector for one configuration source (a file name or ``"<dict>"``)."""

    def __init__(self, source: str):
        self.source = str(source)
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.source, self.problems)

    # -- structure ------------------------------------------------------------------------------
    def mapping(self, value: Any, path: str, allowed: Iterable[str]) -> dict:
        """Return ``value`` as a dict (empty if invalid); report unknown keys."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.add(path, f"expected a mapping, not {short_repr(value)}")
            return {}
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                self.add(f"{path}.{key}" if path else str(key),
                         f"unknown key{_hint(key, allowed)}; expected one of {sorted(allowed)}, not {short_repr(key)}")
        return dict(value)

    # -- scalars --------------------------------------------------------------------------------
    def integer(self, section: dict, key: str, path: str, default=_MISSING, *, minimum: int = 1,
                maximum: int | None = None) -> int:
        """An integer in ``[minimum, maximum]``; ``maximum`` defaults to the ``DIM`` size budget."""
        value = section.get(key, default)
        full = f"{path}.{key}"
        if value is _MISSING:
            self.add(full, "required key is missing")
            return minimum
        top = budget("DIM") if maximum is None else maximum
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= top:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            self.add(full, f"expected {what} <= {top:,}, not {short_repr(value)}")
            return minimum
        return int(value)

    def number(self, section: dict, key: str, path: str, default=_MISSING, *, minimum: float = 0.0,
               strict: bool = False, maximum: float | None = None) -> float:
        """A finite number ``>= minimum`` (``> minimum`` when ``strict``) and ``<= maximum`` if given.

        NaN and +-inf are refused: every comparison with NaN is false, so a range check alone lets it through.
        """
        value = section.get(key, default)
        full = f"{path}.{key}"
        if value is _MISSING:
            self.add(full, "required key is missing")
            return max(minimum, 1.0)
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if not bad:
            ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
            bad = not ok or (maximum is not None and value > maximum)
        if bad:
            word = f"> {minimum}" if strict else f">= {minimum}"
            if maximum is not None:
                word += f" and <= {maximum:g}"
            self.add(full, f"expected a finite number {word}, not {short_repr(value)}")
            return max(minimum, 1.0)
        return float(value)

    def boolean(self, section: dict, key: str, path: str, default: bool) -> bool:
        value = section.get(key, default)
        if not isinstance(value, bool):
            self.add(f"{path}.{key}", f"expected true or false, not {short_repr(value)}")
            return default
        return value

    def choice(self, section: dict, key: str, path: str, choices: Iterable[str], default=_MISSING) -> str:
        choices = tuple(choices)
        value = section.get(key, default)
        full = f"{path}.{key}"
        if value is _MISSING:
            self.add(full, f"required key is missing; expected one of {list(choices)}")
            return choices[0]
        if value not in choices:
            self.add(full, f"expected one of {list(choices)}{_hint(value, choices)}, not {short_repr(value)}")
            return choices[0]
        return value

    def string(self, section: dict, key: str, path: str, default=_MISSING) -> str:
        value = section.get(key, default)
        full = f"{path}.{key}"
        if value is _MISSING:
            self.add(full, "required key is missing")
            return ""
        if not isinstance(value, str) or not value:
            self.add(full, f"expected a non-empty string, not {short_repr(value)}")
            return ""
        return value
