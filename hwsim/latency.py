"""Latency/width contract between the generated RTL blocks and the cycle model (data only).

Every generated block publishes its latency from here (``hwsim.rtl`` imports these numbers; the cycle
model in :mod:`hwsim.perf` reads the same numbers), so the two cannot drift: tests/rtl checks that each
elaborated block reports the value below, and the cocotb benches measure it on Verilator.  This
module imports nothing from Amaranth or ``hwsim.rtl``.

Counting convention: a block's *latency* is the number of cycles from the cycle an input is
transferred (``valid & ready``) to the cycle its result is valid on the output stream; a *cycle
count* of a job is the cycle index of its last output transfer when its first input transfer is
cycle 0, with steady streams (no idle input, no back-pressure).
"""

from __future__ import annotations

__all__ = ["PE_LATENCY", "REQUANT_LATENCY", "ws_tile_cycles", "ws_tile_fold_cycles", "ws_tile_latency"]

#: MAC lane (:class:`hwsim.rtl.pe.PE`): decode -> multiply/align -> accumulate, one register each.
PE_LATENCY = 3

#: Requant unit (:class:`hwsim.rtl.requant_unit.Requant`): one register after each of multiply,
#: rounding shift and zero-point add + saturate; the cycle model's default ``requant.latency``.
REQUANT_LATENCY = 3


def ws_tile_latency(rows: int, cols: int) -> int:
    """Cycles from an activation row entering the ``rows x cols`` weight-stationary tile
    (:class:`hwsim.rtl.tile.SystolicTile`) to its output row: ``rows`` MAC registers down a column,
    ``cols - 1`` activation/de-skew registers across the array."""
    return rows + cols - 1


def ws_tile_fold_cycles(rows: int, cols: int, m: int) -> int:
    """Cycles of one fold with ``m`` activation rows: ``rows`` preload beats, ``m`` stream beats and
    ``rows + cols - 2`` drain cycles before the next fold's preload may start."""
    return 2 * rows + m + cols - 2


def ws_tile_cycles(rows: int, cols: int, m: int, folds: int) -> int:
    """Cycle count of ``folds`` folds back to back (first input transfer to last output transfer):
    ``folds * (2*rows + m + cols - 2)``; the last output row leaves in the cycle the next fold's
    preload could start."""
    return folds * ws_tile_fold_cycles(rows, cols, m)
