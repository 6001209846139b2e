"""Error types shared by every layer of hwsim.

`ConfigError` collects *every* problem found in a configuration or model file, each with its
dotted key path, and reports them together (see DESIGN.md section 3)."""

from __future__ import annotations

from collections.abc import Iterable

#: Problems of one ConfigError listed in its message (the rest are counted).
MAX_LISTED = 50


class HwsimError(Exception):
    """Base class of errors hwsim reports to a user as one clear message (CLI exit code 2)."""


class ConfigError(HwsimError, ValueError):
    """A configuration, workload or model file is invalid.

    Parameters
    ----------
    source : str
        The file (or in-memory source name) that was being read.
    problems : iterable of str
        One line per problem, each starting with its dotted key path,
        e.g. ``"arch.array.rows: expected a positive integer, not -4"``.
    """

    def __init__(self, source: str, problems: Iterable[str]):
        self.source = str(source)
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        count = len(self.problems)
        if count == 1:  # one problem, one line: "<file>: <key path>: <what was expected>"
            super().__init__(f"{self.source}: {self.problems[0]}")
            return
        head = f"{self.source}: {count} problems"
        shown = [f"  - {p}" for p in self.problems[:MAX_LISTED]]
        if count > MAX_LISTED:
            shown.append(f"  ... and {count - MAX_LISTED:,} more")
        super().__init__(head + "\n" + "\n".join(shown))


#: Longest excerpt of a user-supplied value quoted in an error message (characters).
QUOTE_LIMIT = 200


def short_repr(value, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters (``...`` marks the cut).

    Containers are summarised before ``repr`` runs, so a huge or alias-expanded value costs no more
    than its excerpt.
    """
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        kind = type(value).__name__
        return f"<{kind} of {len(value):,} items>"
    try:
        text = reprlib_repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(text: str, limit: int = 2 * QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters (for messages built from third-party error text)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reprlib_repr(value) -> str:
    """``repr`` with nested containers bounded (a deep or wide value never expands fully)."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 4, 12, 12, 12, 12
    r.maxstring, r.maxother, r.maxlong = QUOTE_LIMIT, QUOTE_LIMIT, 60
    return r.repr(value)
