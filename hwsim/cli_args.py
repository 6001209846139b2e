"""Argument types shared by the sub-commands: a bad value is a one-line usage error naming the option."""

from __future__ import annotations

import argparse

from hwsim.limits import budget


def positive_int(text: str) -> int:
    """``argparse`` type: an integer from 1 to the ``DIM`` size budget (see :mod:`hwsim.limits`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text[:60]!r}") from None
    if not 1 <= value <= budget("DIM"):
        raise argparse.ArgumentTypeError(f"expected a positive integer <= {budget('DIM'):,}, not {text[:60]!r}")
    return value


def nonnegative_int(text: str) -> int:
    """``argparse`` type: an integer from 0 to the ``DIM`` size budget."""
    if text.strip() in ("0", "+0", "-0"):
        return 0
    return positive_int(text)


def nonempty_list(text: str) -> str:
    """``argparse`` type: a comma-separated list with at least one non-blank item (returned unchanged)."""
    if not any(item.strip() for item in text.split(",")):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, not {text[:60]!r}")
    return text
