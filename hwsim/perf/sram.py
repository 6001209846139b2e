"""SRAM macro energy per access and area by capacity (one documented model; constants in a YAML file).

The default model is ``hwsim/data/sram_45nm.yaml`` (its sources are cited there)::

    E64(C)      = piecewise log-log interpolation of (capacity KiB, pJ per 64-bit access) points,
                  extrapolated with the end segments' slopes
    factor(C)   = E64(C) / E64(first point)       # multiplies the energy table's flat sram entry
    area(C)     = C * 8192 bits * bitcell_um2 / array_efficiency          (um^2)

The energy model (:mod:`hwsim.perf.energy`) uses :func:`sram_energy_factor` for each operand buffer
when the architecture says ``energy.sram: capacity``; the sweep's area column uses :func:`sram_area_mm2`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hwsim.perf.config_checks import Checker, load_yaml_mapping

_DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "sram_45nm.yaml"


@dataclass(frozen=True)
class SramModel:
    """Validated SRAM model: energy points (KiB, pJ per ``access_bits``), bitcell area, efficiency."""

    name: str
    access_bits: int
    points: tuple[tuple[float, float], ...]
    bitcell_um2: float
    array_efficiency: float
    nand2_um2: float
    source: str = "<dict>"

    def access_pj(self, capacity_kib: float) -> float:
        """Energy of one ``access_bits`` access to a macro of ``capacity_kib`` (pJ)."""
        xs = [math.log(c) for c, _ in self.points]
        ys = [math.log(e) for _, e in self.points]
        x = math.log(max(capacity_kib, 1e-9))
        i = 0 if x <= xs[1] else len(xs) - 2
        for j in range(len(xs) - 1):
            if xs[j] <= x <= xs[j + 1]:
                i = j
                break
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        return math.exp(ys[i] + slope * (x - xs[i]))

    def energy_factor(self, capacity_kib: float) -> float:
        """``access_pj(C) / access_pj(first point)``: the factor on the energy table's flat sram entry."""
        return self.access_pj(capacity_kib) / self.points[0][1]

    def area_mm2(self, capacity_kib: float) -> float:
        """Macro area of ``capacity_kib`` (mm^2): bitcells divided by the array efficiency."""
        return capacity_kib * 8192 * self.bitcell_um2 / self.array_efficiency * 1e-6


def sram_model_from_dict(data: dict, *, source: str = "<dict>") -> SramModel:
    """Validate an SRAM model mapping (problems reported with their key paths)."""
    ck = Checker(source)
    top = ck.mapping(data, "sram", ("version", "name", "access_bits", "energy_points_kib_pj", "bitcell_um2",
                                    "array_efficiency", "nand2_um2"))
    raw = top.get("energy_points_kib_pj")
    points: list[tuple[float, float]] = []
    if not (isinstance(raw, list) and len(raw) >= 2 and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and v > 0 for v in p) for p in raw)):
        ck.add("sram.energy_points_kib_pj", "expected at least two [capacity_kib, pj] pairs of positive numbers")
    else:
        points = sorted((float(c), float(e)) for c, e in raw)
        if len({c for c, _ in points}) != len(points):
            ck.add("sram.energy_points_kib_pj", "capacities must be distinct")
    model = SramModel(name=ck.string(top, "name", "sram", "sram-model"),
                      access_bits=ck.integer(top, "access_bits", "sram", 64),
                      points=tuple(points),
                      bitcell_um2=ck.number(top, "bitcell_um2", "sram", minimum=0.0, strict=True),
                      array_efficiency=ck.number(top, "array_efficiency", "sram", minimum=0.0, strict=True,
                                                 maximum=1.0),
                      nand2_um2=ck.number(top, "nand2_um2", "sram", minimum=0.0, strict=True), source=source)
    ck.raise_if_any()
    return model


@cache
def load_sram_model(path: str = "default") -> SramModel:
    """Load (and cache) an SRAM model YAML; ``"default"`` is the packaged 45 nm model."""
    key = str(_DEFAULT_PATH if path == "default" else Path(path))
    return sram_model_from_dict(load_yaml_mapping(key, what="sram model"), source=key)


def sram_energy_factor(capacity_kib: float, model: str = "default") -> float:
    """Factor on the flat per-bit SRAM energy for a buffer of ``capacity_kib`` (1.0 at 8 KiB by default)."""
    return load_sram_model(model).energy_factor(capacity_kib)


def sram_area_mm2(capacity_kib: float, model: str = "default") -> float:
    """Area of an SRAM macro of ``capacity_kib`` (mm^2)."""
    return load_sram_model(model).area_mm2(capacity_kib)
