"""Error types shared by every layer of hwsim.

`ConfigError` collects *every* problem found in a configuration or model file, each with its
dotted key path, and reports them together (see DESIGN.md section 3)."""

from __future__ import annotations

from collections.abc import Iterable


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
        head = f"{self.source}: {count} problem{'s' if count > 1 else ''}"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in self.problems))
