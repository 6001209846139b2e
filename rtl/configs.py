# amaranth: UnusedElaboratable=no
"""Named RTL configurations: the PE and requant specs that are generated, verified and sized.

Each entry is built from hwsim specs only (format names, :class:`hwsim.gemm.AccumulatorSpec`,
:class:`hwsim.requant.RequantSpec`).  Floating-point PEs get an exact fixed-point accumulator sized by
:func:`hwsim.gemm.accumulator_bits` for ``EXACT_K`` products; two narrow int8 accumulators exist to
exercise wrap and saturation corners.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.gemm import AccumulatorSpec, accumulator_bits
from hwsim.requant import ROUNDING_MODES, RequantSpec

__all__ = ["EXACT_K", "MULTI_PE_CONFIGS", "NORM_CONFIGS", "PE_CONFIGS", "REQUANT_CONFIGS", "TILE_CONFIGS", "NormConfig",
           "PEConfig", "TileConfig", "build", "config_names", "kind_of"]

#: Products an exact floating-point accumulator holds without overflow.
EXACT_K = 4096


@dataclass(frozen=True)
class PEConfig:
    """Operand formats and accumulator of one PE configuration."""

    a_format: str
    b_format: str
    accumulator: AccumulatorSpec | int

    def build(self):
        from .pe import PE

        return PE(self.a_format, self.b_format, self.accumulator)


def _exact(a: str, b: str) -> PEConfig:
    return PEConfig(a, b, accumulator_bits(a, b, EXACT_K))


PE_CONFIGS: dict[str, PEConfig] = {
    "int8xint8": PEConfig("int8", "int8", AccumulatorSpec(bits=32)),
    "int4xint8": PEConfig("int4", "int8", AccumulatorSpec(bits=32)),
    "uint8xint8": PEConfig("uint8", "int8", AccumulatorSpec(bits=32)),
    "dint4xint8": PEConfig("dint4", "int8", AccumulatorSpec(bits=32)),
    "fp4xfp4": _exact("float4_e2m1fn", "float4_e2m1fn"),
    "e4m3xe4m3": _exact("float8_e4m3fn", "float8_e4m3fn"),
    "e5m2xe5m2": _exact("float8_e5m2", "float8_e5m2"),
    "e4m3xe5m2": _exact("float8_e4m3fn", "float8_e5m2"),
    "int8xint8_acc24_wrap": PEConfig("int8", "int8", AccumulatorSpec(bits=24, overflow="wrap")),
    "int8xint8_acc24_sat": PEConfig("int8", "int8", AccumulatorSpec(bits=24, overflow="saturate")),
}

#: Runtime-switchable lanes: mode index -> (a_format, b_format), packed into 8-bit operand words.
MULTI_PE_CONFIGS: dict[str, tuple[tuple[str, str], ...]] = {
    "mp_int8_2xint4_e4m3_2xfp4": (("int8", "int8"), ("int4", "int4"), ("float8_e4m3fn", "float8_e4m3fn"),
                                  ("float4_e2m1fn", "float4_e2m1fn")),
}

REQUANT_CONFIGS: dict[str, RequantSpec] = {
    f"rq_{rounding}_m{bits}_int8": RequantSpec(multiplier_bits=bits, rounding=rounding, out_format="int8")
    for rounding in ROUNDING_MODES for bits in (32, 16)
}
REQUANT_CONFIGS["rq_gemmlowp_m32_uint8"] = RequantSpec(multiplier_bits=32, rounding="gemmlowp",
                                                       out_format="uint8")
REQUANT_CONFIGS["rq_rne_m16_int4"] = RequantSpec(multiplier_bits=16, rounding="rne", out_format="int4")


@dataclass(frozen=True)
class TileConfig:
    """A systolic tile as an architecture spec: array shape, PE formats and accumulator width.

    ``overflow`` other than ``"wrap"`` is a tile option beyond the architecture schema (the narrow
    saturating accumulators that exercise the overflow corners).
    """

    rows: int
    cols: int
    weight_format: str
    activation_format: str
    accumulator_bits: int = 32
    overflow: str = "wrap"

    def arch(self):
        """The :class:`hwsim.perf.arch.ArchSpec` this tile is generated from (``tile`` timing mode)."""
        from hwsim.perf.arch import arch_from_dict

        return arch_from_dict({"name": f"tile-{self.rows}x{self.cols}", "array": {
            "rows": self.rows, "cols": self.cols, "dataflow": "ws"}, "pe": {
            "weight_format": self.weight_format, "activation_format": self.activation_format,
            "accumulator_bits": self.accumulator_bits}, "timing": {"mode": "tile"}}, source="rtl.configs")

    def build(self, **options):
        from .tile import SystolicTile, tile_accumulator

        arch = self.arch()
        accumulator = tile_accumulator(arch)
        if self.overflow != "wrap":
            accumulator = AccumulatorSpec(bits=arch.pe.accumulator_bits, overflow=self.overflow)
        return SystolicTile.from_arch(arch, accumulator=accumulator, **options)


def _tile(rows: int, cols: int, weight: str, act: str, **acc) -> tuple[str, TileConfig]:
    short = {"float8_e4m3fn": "e4m3", "float4_e2m1fn": "fp4"}
    suffix = "" if not acc else f"_acc{acc['accumulator_bits']}_{ {'wrap': 'wrap', 'saturate': 'sat'}[acc['overflow']]}"
    name = f"tile_ws_{rows}x{cols}_{short.get(weight, weight)}x{short.get(act, act)}{suffix}"
    return name, TileConfig(rows, cols, weight, act, **acc)


#: Weight-stationary tiles (names: ``tile_ws_<R>x<C>_<weight>x<activation>``).
TILE_CONFIGS: dict[str, TileConfig] = dict([
    _tile(4, 4, "int8", "int8"), _tile(8, 8, "int8", "int8"), _tile(4, 8, "int8", "int8"),
    _tile(8, 4, "int8", "int8"), _tile(4, 4, "float8_e4m3fn", "float8_e4m3fn"),
    _tile(8, 8, "float8_e4m3fn", "float8_e4m3fn"), _tile(4, 4, "int4", "int8"), _tile(4, 4, "dint4", "int8"),
    _tile(4, 4, "float4_e2m1fn", "float4_e2m1fn"),
    _tile(4, 4, "int8", "int8", accumulator_bits=16, overflow="wrap"),
    _tile(4, 4, "int8", "int8", accumulator_bits=16, overflow="saturate"),
])


@dataclass(frozen=True)
class NormConfig:
    """An integer norm unit: the default architecture's ``layernorm`` section, a norm kind and row length."""

    kind: str
    n: int

    def build(self, **options):
        from hwsim.perf.arch import default_arch

        from .norm_unit import IntNormUnit

        return IntNormUnit.from_arch(default_arch(), self.kind, self.n, **options)


#: Integer norm units: MiniLM-L6's LayerNorm rows (384) and SmolLM2-135M's RMSNorm rows (576).
NORM_CONFIGS: dict[str, NormConfig] = {
    "norm_ln_384": NormConfig("layernorm", 384),
    "norm_rms_576": NormConfig("rmsnorm", 576),
}


def config_names() -> list[str]:
    """Every configuration name (PEs first)."""
    return [*PE_CONFIGS, *MULTI_PE_CONFIGS, *REQUANT_CONFIGS, *TILE_CONFIGS, *NORM_CONFIGS]


def kind_of(name: str) -> str:
    """``"pe"``, ``"requant"``, ``"tile"`` or ``"norm"``."""
    if name in REQUANT_CONFIGS:
        return "requant"
    return "tile" if name in TILE_CONFIGS else "norm" if name in NORM_CONFIGS else "pe"


def build(name: str):
    """Return a fresh component for configuration ``name``."""
    if name in PE_CONFIGS:
        return PE_CONFIGS[name].build()
    if name in MULTI_PE_CONFIGS:
        from .multi_pe import MultiPrecisionPE

        return MultiPrecisionPE(MULTI_PE_CONFIGS[name], k=EXACT_K)
    if name in REQUANT_CONFIGS:
        from .requant_unit import Requant

        return Requant(REQUANT_CONFIGS[name])
    if name in TILE_CONFIGS:
        return TILE_CONFIGS[name].build()
    if name in NORM_CONFIGS:
        return NORM_CONFIGS[name].build()
    raise ValueError(f"unknown RTL configuration (known: {', '.join(config_names())}), not {name!r}")
