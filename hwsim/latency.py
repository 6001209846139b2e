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

__all__ = ["INT_NORM_PASSES", "INT_NORM_PIPELINE", "PE_LATENCY", "REQUANT_LATENCY", "int_norm_cycles",
           "int_norm_divides", "int_norm_interval", "ws_tile_cycles", "ws_tile_fold_cycles", "ws_tile_latency"]

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


#: Integer norm unit (:class:`hwsim.rtl.norm_unit.IntNormUnit`): after the last input beat of a row,
#: its last elements pass the two requant stages (γ/β to int16, then to the output format).
INT_NORM_PIPELINE = 2 * REQUANT_LATENCY - 1

#: Passes over each row (the unit re-reads the row from SRAM once per pass).
INT_NORM_PASSES = {"layernorm": 3, "rmsnorm": 2}


def int_norm_divides(kind: str, newton_iterations: int) -> int:
    """Integer divides per row: the mean (LayerNorm), one per Newton step, the reciprocal."""
    return newton_iterations + 1 + (1 if kind == "layernorm" else 0)


def int_norm_interval(n: int, kind: str, *, lanes: int, div_latency: int, newton_iterations: int) -> int:
    """Cycles between the first beats of consecutive rows on the unit (one divider, no overlap of
    rows): ``P * ceil(n / lanes) + D * div_latency``; rows per cycle is its inverse."""
    return INT_NORM_PASSES[kind] * -(-n // lanes) + int_norm_divides(kind, newton_iterations) * div_latency


def int_norm_cycles(n: int, kind: str, *, lanes: int, div_latency: int, newton_iterations: int,
                    rows: int = 1) -> int:
    """Cycle count of ``rows`` rows of ``n`` elements (first input beat to last output beat):
    ``rows * interval + INT_NORM_PIPELINE``."""
    return rows * int_norm_interval(n, kind, lanes=lanes, div_latency=div_latency,
                                    newton_iterations=newton_iterations) + INT_NORM_PIPELINE
