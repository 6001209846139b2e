"""An architecture derived from another by adding the PE format pairs a workload needs.

A quantized graph whose GEMMs multiply a pair the array's PEs lack (``int16 x int16`` for LLM.int8()'s side
GEMM, ``int8 x nf4``, ``int8 x float4_e2m1fn``, a fitted quantile codebook ...) cannot be priced on that
array (:func:`hwsim.perf.timing.gemm_formats` raises). :func:`with_required_pairs` returns the same
architecture with those pairs added to ``pe.supported_pairs`` and ``+pairs`` appended to its name; nothing
else changes. What the added pairs cost follows the model's existing rules, which callers should state:

* cycles: one MAC per PE per cycle whatever the pair (as for every pair of the default array);
* energy per MAC: :func:`hwsim.perf.mac_energy.mac_pj` — the synthesised PE's area where the RTL has one,
  otherwise the energy table's width rule (one ``a x w`` multiply + one accumulate); dINT and codebook codes
  are integer multipliers of their code width (:mod:`hwsim.perf.format_info`; a codebook's table lookup
  ahead of the multiplier is not charged) — a lower bound for formats whose levels are wider than their
  codes (dINT with α ≠ 0.5: 6–7-bit fixed-point levels; NF4 and quantile codebooks: float32 levels);
* storage: the formats' widths (plus group scales).
"""

from __future__ import annotations

from dataclasses import replace

from hwsim.perf.arch import ArchSpec, as_arch
from hwsim.perf.format_info import multiplier_format
from hwsim.perf.sources import as_workload
from hwsim.perf.workload import GemmOp


def required_pairs(workload, arch) -> list[tuple[str, str]]:
    """(activation, weight) multiplier pairs of ``workload``'s GEMMs that ``arch``'s PEs lack, in first-use order."""
    arch = as_arch(arch)
    out: list[tuple[str, str]] = []
    for op in as_workload(workload).ops:
        if not isinstance(op, GemmOp):
            continue
        a = op.a_format or arch.pe.activation_format
        b = op.b_format or (arch.pe.activation_format if op.b_is_activation else arch.pe.weight_format)
        pair = (multiplier_format(a), multiplier_format(b))
        if not arch.pe.supports(*pair) and pair not in out:
            out.append(pair)
    return out


def with_required_pairs(workload, arch) -> tuple[ArchSpec, list[tuple[str, str]]]:
    """``arch`` plus the pairs ``workload`` needs (unchanged, with ``[]``, when it needs none)."""
    arch = as_arch(arch)
    extra = required_pairs(workload, arch)
    if not extra:
        return arch, []
    pe = replace(arch.pe, supported_pairs=tuple(arch.pe.supported_pairs) + tuple(extra))
    return replace(arch, pe=pe, name=f"{arch.name}+pairs"), extra


def describe_pairs(pairs) -> str:
    """Short text of added pairs; fitted codebooks (``quantile4:<hex>``) are counted by their type."""
    counts: dict[str, int] = {}
    for a, w in pairs:
        key = f"{a.split(':')[0]} x {w.split(':')[0]}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(k if n == 1 else f"{k} ({n} codebooks)" for k, n in counts.items())
