"""Per-op and per-run results of the performance/energy model, with DataFrame/JSON/CSV output.

Derived metrics (per op and for the run): ``latency_us = total_cycles / clock_mhz``;
``utilization = macs / (total_cycles * rows * cols)``; ``energy_per_mac_pj = energy / macs``;
``tops = 2 * macs / latency``; ``tops_per_w = 2 * macs / energy_pj`` (ops per pJ = TOPS/W; no leakage);
``power_w = energy / latency``. ``macs`` are the MACs performed; ``skipped_macs`` those of the causally
masked attention tiles a fused attention skips (:mod:`hwsim.perf.flash_attention`).
``norm_adds/mults/shifts/divides/requants`` are the integer norm unit's operations
(:func:`hwsim.layernorm.norm_op_counts` per row; 0 with ``layernorm.arithmetic: float``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from hwsim.atomic_io import write_json_atomic, write_text_atomic
from hwsim.perf.energy import EnergyBreakdown
from hwsim.perf.timing import OpCounts

_COUNT_COLUMNS = ("m", "k", "n", "count", "macs", "elements", "row_folds", "col_folds", "compute_cycles",
                  "stall_cycles", "total_cycles", "mapping_efficiency", "sram_ifmap_reads", "sram_weight_reads",
                  "sram_ofmap_writes", "sram_ofmap_reads", "sram_psum_writes", "dram_ifmap_reads",
                  "dram_weight_reads", "dram_ofmap_writes", "dram_psum_writes", "dram_psum_reads",
                  "requant_elements", "norm_elements", "norm_adds", "norm_mults", "norm_shifts", "norm_divides",
                  "norm_requants", "vector_adds", "vector_mults", "quant_adds", "quant_mults", "epilogue_adds",
                  "epilogue_mults", "mapping", "int_units_label", "lut_bytes")


@dataclass
class LayerResult:
    """One op: its counts, its energy and the array/clock needed to derive rates."""

    counts: OpCounts
    energy: EnergyBreakdown
    pe_count: int
    clock_mhz: float

    @property
    def name(self) -> str:
        return self.counts.name

    @property
    def latency_us(self) -> float:
        return self.counts.total_cycles / self.clock_mhz

    @property
    def utilization(self) -> float:
        c = self.counts
        return c.macs / (c.total_cycles * self.pe_count) if c.total_cycles else 0.0

    def row(self) -> dict:
        c = self.counts
        out = {"name": c.name, "kind": c.kind, "a_format": c.a_format, "w_format": c.w_format,
               "out_format": c.out_format}
        out.update({k: getattr(c, k) for k in _COUNT_COLUMNS})
        out["fused_ops"] = c.fused_ops
        out["fusion"] = c.fusion
        out["skipped_macs"] = c.skipped_macs
        out["utilization"] = self.utilization
        out["latency_us"] = self.latency_us
        per = _stream_bytes(c)
        out.update(per)
        out["sram_bytes"] = per["sram_ifmap_bytes"] + per["sram_weight_bytes"] + per["sram_ofmap_bytes"]
        out["dram_bytes"] = c.dram_bytes()
        out.update(self.energy.to_dict())
        out["energy_per_mac_pj"] = self.energy.total / c.macs if c.macs else 0.0
        return out


def _stream_bytes(c: OpCounts) -> dict[str, float]:
    """SRAM/DRAM bytes per operand stream (a fused group's: the sum over its parts, each at its widths)."""
    if c.parts:
        parts = [_stream_bytes(p) for p in c.parts]
        return {k: sum(p[k] for p in parts) for k in parts[0]}
    return {
        "sram_ifmap_bytes": c.sram_ifmap_reads * c.ifmap_bits / 8,
        "sram_weight_bytes": c.sram_weight_reads * c.weight_bits / 8,
        "sram_ofmap_bytes": ((c.sram_ofmap_writes - c.sram_psum_writes) * c.out_bits
                             + (c.sram_psum_writes + c.sram_ofmap_reads) * c.psum_bits) / 8,
        "dram_ifmap_bytes": c.dram_ifmap_reads * c.ifmap_bits / 8,
        "dram_weight_bytes": c.dram_weight_reads * c.weight_bits / 8,
        "dram_ofmap_bytes": (c.dram_ofmap_writes * c.out_bits
                             + (c.dram_psum_writes + c.dram_psum_reads) * c.psum_bits) / 8,
    }


@dataclass
class RunResult:
    """All ops of a workload on one architecture. ``to_frame()`` gives one row per op."""

    arch_name: str
    workload_name: str
    dataflow: str
    timing_mode: str
    rows: int
    cols: int
    clock_mhz: float
    layers: list[LayerResult] = field(default_factory=list)
    #: the architecture with every default filled in (:func:`hwsim.perf.arch.resolved_arch`)
    arch_resolved: dict = field(default_factory=dict)
    #: model warnings: narrow units, partial-sum spills, tiles that overflow the buffers
    warnings: list[str] = field(default_factory=list)
    #: workload-specific metrics (LLM phases: tokens/s, J/token, TTFT, roofline), added by the caller
    extra: dict = field(default_factory=dict)
    #: lines appended to :meth:`summary_text` by the caller that added ``extra``
    extra_text: str = ""

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([layer.row() for layer in self.layers])

    @property
    def energy(self) -> EnergyBreakdown:
        total = EnergyBreakdown()
        for layer in self.layers:
            total = total + layer.energy
        return total

    def summary(self) -> dict:
        cycles = sum(layer.counts.total_cycles for layer in self.layers)
        compute = sum(layer.counts.compute_cycles for layer in self.layers)
        macs = sum(layer.counts.macs for layer in self.layers)
        skipped = sum(layer.counts.skipped_macs for layer in self.layers)
        energy = self.energy
        latency_us = cycles / self.clock_mhz
        e_pj = energy.total
        out = {
            "arch": self.arch_name, "workload": self.workload_name, "dataflow": self.dataflow,
            "timing_mode": self.timing_mode, "array": f"{self.rows}x{self.cols}", "clock_mhz": self.clock_mhz,
            "ops": len(self.layers), "macs": macs, "skipped_macs": skipped, "total_cycles": cycles,
            "compute_cycles": compute,
            "stall_cycles": cycles - compute, "latency_us": latency_us,
            "utilization": macs / (cycles * self.rows * self.cols) if cycles else 0.0,
            "energy_total_pj": e_pj, "energy_total_uj": e_pj * 1e-6,
            "energy_per_mac_pj": e_pj / macs if macs else 0.0,
            "tops": 2 * macs / (latency_us * 1e6) if cycles else 0.0,
            "tops_per_w": 2 * macs / e_pj if e_pj else 0.0,
            "power_w": e_pj * 1e-12 / (latency_us * 1e-6) if cycles else 0.0,
            "energy_breakdown_pj": {k: v for k, v in asdict(energy).items()},
            "warnings": list(self.warnings),
            "architecture": self.arch_resolved,
        }
        out.update(self.extra)
        return out

    def summary_text(self) -> str:
        s = self.summary()
        lines = [
            f"arch {s['arch']} ({s['array']} {s['dataflow']}, {s['clock_mhz']:g} MHz, {s['timing_mode']} timing)"
            f"  workload {s['workload']} ({s['ops']} ops)",
            f"  cycles        {s['total_cycles']:>14,d}  (compute {s['compute_cycles']:,d}, stall "
            f"{s['stall_cycles']:,d})",
            f"  latency       {s['latency_us']:>14,.2f} us",
            f"  MACs          {s['macs']:>14,d}  utilization {100 * s['utilization']:.1f} %",
            f"  energy        {s['energy_total_uj']:>14,.3f} uJ  ({s['energy_per_mac_pj']:.3f} pJ/MAC)",
            f"  throughput    {s['tops']:>14,.3f} TOPS  efficiency {s['tops_per_w']:.3f} TOPS/W  "
            f"power {s['power_w']:.3f} W",
            "  energy breakdown (uJ, % of total):",
        ]
        total = s["energy_total_pj"] or 1.0
        for key, val in s["energy_breakdown_pj"].items():
            lines.append(f"    {key:<12} {val * 1e-6:>12,.3f}  {100 * val / total:5.1f} %")
        if "fusion" in self.extra:
            from hwsim.perf.fusion import plan_text

            lines.append(plan_text(self.extra["fusion"]))
        if self.extra_text:
            lines.append(self.extra_text)
        return "\n".join(lines)

    def write(self, out_dir) -> dict[str, Path]:
        """Write ``per_op.csv``, ``per_op.json`` and ``summary.json`` into ``out_dir``."""
        out = Path(out_dir)
        frame = self.to_frame()
        return {
            "csv": write_text_atomic(out / "per_op.csv", frame.to_csv(index=False)),
            "json": write_json_atomic(out / "per_op.json", frame.to_dict(orient="records")),
            "summary": write_json_atomic(out / "summary.json", self.summary()),
        }
