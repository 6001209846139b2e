"""Accelerator architecture specification: YAML -> validated, frozen dataclasses.

Schema (every section except ``array`` and ``pe`` is optional; defaults shown)::

    version: 1
    name: edge-int8-16x16
    array:    {rows: 16, cols: 16, dataflow: ws}          # dataflow: ws | os | is
    pe:       {weight_format: int8, activation_format: int8, accumulator_bits: 32,
               output_format: int8,                      # output_format defaults to activation_format
               supported_pairs: [[int8, int8], [int8, int4], ...]}   # default: DEFAULT_PE_PAIRS
    clock_mhz: 500
    buffers:
      double_buffered: true
      ifmap:  {size_kib: 256, word_bits: 8,  bandwidth_words_per_cycle: 64}
      weight: {size_kib: 256, word_bits: 8,  bandwidth_words_per_cycle: 64}
      ofmap:  {size_kib: 128, word_bits: 32, bandwidth_words_per_cycle: 64}
      # or instead of the three: unified: {size_kib: 640, word_bits: 8, bandwidth_words_per_cycle: 192}
    dram:     {bandwidth_bytes_per_cycle: 32, latency_cycles: 100}   # or bandwidth_gb_per_s: 16.0
    requant:  {lanes: 16, latency: 3, multiplier_bits: 32}   # latency: hwsim.latency.REQUANT_LATENCY
    layernorm: {lanes: 16, latency: 5, passes: 2, arithmetic: integer, newton_iterations: 5,
                div_latency: 24, dividers: 1, overlap_rows: true}  # false: the RTL unit's schedule
    vector:   {lanes: 16, latency: 4, format: float32, ops_per_cycle: 16}
    timing:   {mode: pipelined, mapper: search, objective: latency}
              # mode: pipelined | scalesim | tile (ws only); mapper (pipelined only): search (tiles x
              # loop orders, hwsim.perf.mapper) | folds (no DRAM tiling: each operand resident whole or
              # refetched per fold); objective: latency | energy | edp; fusion: true | false
              # (graph workloads, pipelined + search only: hwsim.perf.fusion)
    energy:   {table: default, technology_scale: 1.0,    # table: "default" or a YAML path
               sram: flat, sram_model: default}          # sram: flat (the table's per-bit entry) |
              # capacity (that entry times hwsim.perf.sram's factor of each buffer's capacity);
              # sram_model: "default" (hwsim/data/sram_45nm.yaml) or a YAML path

Problems are collected with their dotted key paths (``arch.array.rows: expected a positive integer,
not -4``) and raised together as one :class:`hwsim.errors.ConfigError` naming the file.
A ``unified`` buffer is modelled as three equal partitions (ifmap/weight/ofmap) of its size.

``pe.supported_pairs`` lists the (activation, weight) multiplier format pairs the PE array supports;
a GEMM whose pair is not in it is an error naming the op and the pair. Pairs name multiplier operand
formats: an MX block format stands for its element format (``mxfp4`` -> ``float4_e2m1fn``; its shared
scale is applied in the epilogue). The default (:data:`DEFAULT_PE_PAIRS`) is the multi-precision PE of
``rtl/multi_pe.py`` (int8, int4, e4m3, fp4 e2m1, each times itself) plus the mixed pairs of the
quantization presets (int8 x int4/dint4/uint4, e4m3 x e2m1, uint16 x int8 for Q0.16 probabilities).
The PE's own default pairs
``(activation_format, weight_format)`` and ``(activation_format, activation_format)`` (the formats an
unquantized graph is priced at) are always supported, in addition to the list.

``layernorm.arithmetic`` selects the norm unit's cost model: ``integer`` (default) is hwsim's golden
integer LayerNorm/RMSNorm (:mod:`hwsim.layernorm`): integer adds/multiplies/shifts per element, an
integer square root by ``newton_iterations`` Newton steps and integer divides on ``dividers`` divider
units of ``div_latency`` cycles each; ``latency`` is then its pipeline depth (default: the generated
RTL unit's, :data:`hwsim.latency.INT_NORM_PIPELINE`; 16 for ``float``), and each row is streamed
as the golden datapath does (3 times for LayerNorm, 2 for RMSNorm; ``passes`` applies to ``float``
only). ``float`` is a floating-point unit in the vector format (``passes`` sweeps, ``latency`` once).
The default budget of 5 Newton iterations is the worst case of the golden model's start value
``2**ceil(bits/2)`` for any variance sum below 2**49 (its documented S2 accumulator is 48 bits); the
MiniLM-L6 rows need 4, and :class:`hwsim.layernorm.IntNormSpec`'s 12 is a loose budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from hwsim.errors import short_repr
from hwsim.latency import INT_NORM_PIPELINE, REQUANT_LATENCY
from hwsim.limits import budget
from hwsim.perf.config_checks import Checker, load_yaml_mapping
from hwsim.perf.format_info import known_format, multiplier_format

DATAFLOWS = ("ws", "os", "is")
TIMING_MODES = ("pipelined", "scalesim", "tile")
MAPPERS = ("search", "folds")
MAPPER_OBJECTIVES = ("latency", "energy", "edp")
OPERANDS = ("ifmap", "weight", "ofmap")
SRAM_ENERGY_RULES = ("flat", "capacity")
#: (activation, weight) multiplier format pairs of the default PE: rtl/multi_pe.py's modes (int8, 2 x int4,
#: e4m3, 2 x fp4) plus the mixed pairs the quantization presets use (W4A8 int4/dint4, GPTQ/AWQ/GGUF uint4,
#: FP4/MXFP4/NVFP4 weights with FP8 activations) and unsigned activations with a zero point (softmax
#: probabilities and GELU outputs: uint8, rtl/configs.py's ``uint8xint8`` PE) times the integer weights.
DEFAULT_PE_PAIRS = (
    ("int8", "int8"), ("int4", "int4"), ("float8_e4m3fn", "float8_e4m3fn"), ("float4_e2m1fn", "float4_e2m1fn"),
    ("int8", "int4"), ("int8", "dint4"), ("int8", "uint4"), ("float8_e4m3fn", "float4_e2m1fn"),
    ("uint8", "int8"), ("uint8", "int4"), ("uint8", "dint4"), ("uint8", "uint4"), ("uint16", "int8"),
)


@dataclass(frozen=True, kw_only=True)
class ArrayConfig:
    """PE array: ``rows`` x ``cols`` multiply-accumulate cells and the dataflow."""

    rows: int
    cols: int
    dataflow: str = "ws"


@lru_cache(maxsize=256)
def _multiplier_pairs(pairs: tuple, act: str, weight: str) -> frozenset[tuple[str, str]]:
    own = ((act, weight), (act, act))
    return frozenset((multiplier_format(a), multiplier_format(w)) for a, w in (*pairs, *own))


@dataclass(frozen=True, kw_only=True)
class PEConfig:
    """PE datapath: default formats (registry names), accumulator width in bits, supported format pairs.

    ``weight_format``/``activation_format``/``output_format`` price tensors that carry no QuantSpec;
    ``supported_pairs`` are the (activation, weight) multiplier pairs (module docstring).
    """

    weight_format: str = "int8"
    activation_format: str = "int8"
    accumulator_bits: int = 32
    output_format: str = "int8"
    supported_pairs: tuple[tuple[str, str], ...] = DEFAULT_PE_PAIRS

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Every supported multiplier pair: ``supported_pairs`` plus the PE's own default pairs."""
        return _multiplier_pairs(self.supported_pairs, self.activation_format, self.weight_format)

    def supports(self, a_format: str, w_format: str) -> bool:
        """True when the array multiplies ``a_format`` by ``w_format`` (MX formats by their element)."""
        return (multiplier_format(a_format), multiplier_format(w_format)) in self.pairs()


@dataclass(frozen=True, kw_only=True)
class BufferConfig:
    """One on-chip SRAM: capacity, word width and read/write port bandwidth."""

    size_kib: float
    word_bits: int = 8
    bandwidth_words_per_cycle: float = 64.0

    @property
    def size_bits(self) -> float:
        return self.size_kib * 1024 * 8


@dataclass(frozen=True, kw_only=True)
class BuffersConfig:
    ifmap: BufferConfig
    weight: BufferConfig
    ofmap: BufferConfig
    double_buffered: bool = True
    unified: bool = False

    def of(self, operand: str) -> BufferConfig:
        return getattr(self, operand)


@dataclass(frozen=True, kw_only=True)
class DRAMConfig:
    bandwidth_bytes_per_cycle: float = 32.0
    latency_cycles: int = 100


@dataclass(frozen=True, kw_only=True)
class RequantConfig:
    """Requantization unit: ``lanes`` elements per cycle after a pipeline ``latency`` (cycles)."""

    lanes: int = 16
    latency: int = REQUANT_LATENCY
    multiplier_bits: int = 32


NORM_ARITHMETIC = ("integer", "float")
#: Pipeline latency of the float norm unit when the YAML gives none (the integer unit's is the RTL's,
#: :data:`hwsim.latency.INT_NORM_PIPELINE`).
FLOAT_NORM_LATENCY = 16
#: Newton iterations budgeted by the integer norm unit (worst case below 2**49; see module docstring).
DEFAULT_NEWTON_ITERATIONS = 5


@dataclass(frozen=True, kw_only=True)
class LayerNormConfig:
    """LayerNorm/RMSNorm unit: ``lanes`` elements per cycle; ``arithmetic`` integer (golden model) or float.

    Integer: ``newton_iterations`` square-root steps, ``dividers`` divider units of ``div_latency``
    cycles per divide, ``latency`` = pipeline depth; ``overlap_rows`` False charges the generated RTL
    unit's schedule (rows one after another, :func:`hwsim.latency.int_norm_cycles`).
    Float: ``passes`` sweeps per row plus ``latency``.
    """

    lanes: int = 16
    latency: int = INT_NORM_PIPELINE
    passes: int = 2
    arithmetic: str = "integer"
    newton_iterations: int = DEFAULT_NEWTON_ITERATIONS
    div_latency: int = 24
    dividers: int = 1
    overlap_rows: bool = True


@dataclass(frozen=True, kw_only=True)
class VectorConfig:
    """Vector unit for softmax / GELU / element-wise ops, computing in ``format``.

    ``ops_per_cycle`` (adds or multiplies per cycle over all lanes) defaults to ``lanes``.
    """

    lanes: int = 16
    latency: int = 4
    format: str = "float32"
    ops_per_cycle: float = 0.0

    @property
    def throughput(self) -> float:
        """Floating-point adds/multiplies per cycle (``ops_per_cycle``, default one per lane)."""
        return self.ops_per_cycle or float(self.lanes)


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """A complete accelerator description. Build with :func:`load_arch` or :func:`arch_from_dict`."""

    name: str
    array: ArrayConfig
    pe: PEConfig = field(default_factory=PEConfig)
    clock_mhz: float = 500.0
    buffers: BuffersConfig
    dram: DRAMConfig = field(default_factory=DRAMConfig)
    requant: RequantConfig = field(default_factory=RequantConfig)
    layernorm: LayerNormConfig = field(default_factory=LayerNormConfig)
    vector: VectorConfig = field(default_factory=VectorConfig)
    timing_mode: str = "pipelined"
    mapper: str = "search"
    mapper_objective: str = "latency"
    #: operator fusion of graph workloads (hwsim.perf.fusion); pipelined timing with the mapper only
    fusion: bool = True
    energy_table: str = "default"
    technology_scale: float = 1.0
    sram_energy: str = "flat"
    sram_model: str = "default"
    source: str = "<dict>"

    def with_(self, **changes) -> ArchSpec:
        """Copy with top-level fields replaced (sweeps): ``arch.with_(timing_mode="scalesim")``."""
        return replace(self, **changes)


_TOP_KEYS = ("version", "name", "array", "pe", "clock_mhz", "buffers", "dram", "requant", "layernorm",
             "vector", "timing", "energy", "description")
_MAX_KIB = float(1 << 32)  # 4 TiB of SRAM: far beyond any chip, still exact in float
_MAX_RATE = 1e12  # words or bytes per cycle, GB/s, ops per cycle: finite and far beyond any chip
_DEFAULT_BUFFERS = {"ifmap": (256, 8), "weight": (256, 8), "ofmap": (128, 32)}


def _buffer(ck: Checker, raw, path: str, default_kib: float, default_bits: int) -> BufferConfig:
    sec = ck.mapping(raw, path, ("size_kib", "word_bits", "bandwidth_words_per_cycle"))
    return BufferConfig(
        size_kib=ck.number(sec, "size_kib", path, default_kib, minimum=0.0, strict=True, maximum=_MAX_KIB),
        word_bits=ck.integer(sec, "word_bits", path, default_bits, maximum=1024),
        bandwidth_words_per_cycle=ck.number(sec, "bandwidth_words_per_cycle", path, 64.0, minimum=0.0,
                                            strict=True, maximum=_MAX_RATE),
    )


def _buffers(ck: Checker, raw, path: str) -> BuffersConfig:
    sec = ck.mapping(raw, path, ("double_buffered", "unified") + OPERANDS)
    double = ck.boolean(sec, "double_buffered", path, True)
    if "unified" in sec:
        for name in OPERANDS:
            if name in sec:
                ck.add(f"{path}.{name}", "give either 'unified' or the per-operand buffers, not both")
        uni = _buffer(ck, sec["unified"], f"{path}.unified", 640, 8)
        part = BufferConfig(size_kib=uni.size_kib / 3, word_bits=uni.word_bits,
                            bandwidth_words_per_cycle=uni.bandwidth_words_per_cycle / 3)
        return BuffersConfig(ifmap=part, weight=part, ofmap=part, double_buffered=double, unified=True)
    bufs = {name: _buffer(ck, sec.get(name), f"{path}.{name}", *_DEFAULT_BUFFERS[name]) for name in OPERANDS}
    return BuffersConfig(**bufs, double_buffered=double)


def _check_format(ck: Checker, sec: dict, key: str, path: str, default: str) -> str:
    value = sec.get(key, default)
    if not known_format(value):
        ck.add(f"{path}.{key}", f"unknown number format; expected a registry name such as 'int8', "
                                f"'int4', 'dint4' or 'float8_e4m3fn', not {short_repr(value)}")
        return default
    return value


def _pairs(ck: Checker, sec: dict, path: str) -> tuple[tuple[str, str], ...]:
    """``pe.supported_pairs``: a non-empty list of [activation, weight] registry format names."""
    raw = sec.get("supported_pairs")
    if raw is None:
        return DEFAULT_PE_PAIRS
    full = f"{path}.supported_pairs"
    if not isinstance(raw, list) or not raw:
        ck.add(full, f"expected a non-empty list of [activation, weight] format pairs, not {raw!r}")
        return DEFAULT_PE_PAIRS
    pairs = []
    for i, item in enumerate(raw):
        if (not isinstance(item, (list, tuple)) or len(item) != 2
                or not all(isinstance(f, str) and known_format(f) for f in item)):
            ck.add(f"{full}[{i}]", f"expected a pair [activation, weight] of registry format names such as "
                                   f"[int8, int4], not {item!r}")
            continue
        pairs.append((item[0], item[1]))
    return tuple(pairs) or DEFAULT_PE_PAIRS


def arch_from_dict(data: dict, *, source: str = "<dict>", base_dir: Path | None = None) -> ArchSpec:
    """Validate a parsed architecture mapping and build an :class:`ArchSpec`.

    ``base_dir`` resolves a relative ``energy.table`` path (the directory of the YAML file).
    """
    ck = Checker(source)
    top = ck.mapping(data, "arch", _TOP_KEYS)
    version = top.get("version", 1)
    if version != 1:
        ck.add("arch.version", f"expected 1, not {short_repr(version)}")
    name = ck.string(top, "name", "arch", Path(source).stem if source != "<dict>" else "arch")

    sec = ck.mapping(top.get("array"), "arch.array", ("rows", "cols", "dataflow"))
    if "array" not in top:
        ck.add("arch.array", "required section is missing")
    side = budget("ARRAY_DIM")
    array = ArrayConfig(rows=ck.integer(sec, "rows", "arch.array", maximum=side),
                        cols=ck.integer(sec, "cols", "arch.array", maximum=side),
                        dataflow=ck.choice(sec, "dataflow", "arch.array", DATAFLOWS, "ws"))

    sec = ck.mapping(top.get("pe"), "arch.pe",
                     ("weight_format", "activation_format", "accumulator_bits", "output_format", "supported_pairs"))
    act = _check_format(ck, sec, "activation_format", "arch.pe", "int8")
    weight = _check_format(ck, sec, "weight_format", "arch.pe", "int8")
    pe = PEConfig(weight_format=weight,
                  activation_format=act,
                  accumulator_bits=ck.integer(sec, "accumulator_bits", "arch.pe", 32, maximum=64),
                  output_format=_check_format(ck, sec, "output_format", "arch.pe", act),
                  supported_pairs=_pairs(ck, sec, "arch.pe"))

    clock = ck.number(top, "clock_mhz", "arch", 500.0, minimum=0.0, strict=True, maximum=1e6)
    buffers = _buffers(ck, top.get("buffers"), "arch.buffers")

    sec = ck.mapping(top.get("dram"), "arch.dram",
                     ("bandwidth_bytes_per_cycle", "bandwidth_gb_per_s", "latency_cycles"))
    if "bandwidth_gb_per_s" in sec and "bandwidth_bytes_per_cycle" in sec:
        ck.add("arch.dram.bandwidth_gb_per_s", "give either bandwidth_gb_per_s or bandwidth_bytes_per_cycle, "
                                               "not both")
    if "bandwidth_gb_per_s" in sec:
        gbps = ck.number(sec, "bandwidth_gb_per_s", "arch.dram", minimum=0.0, strict=True, maximum=_MAX_RATE)
        bpc = gbps * 1e3 / clock  # GB/s / (MHz) = bytes per cycle * 1e3
    else:
        bpc = ck.number(sec, "bandwidth_bytes_per_cycle", "arch.dram", 32.0, minimum=0.0, strict=True,
                        maximum=_MAX_RATE)
    dram = DRAMConfig(bandwidth_bytes_per_cycle=bpc,
                      latency_cycles=ck.integer(sec, "latency_cycles", "arch.dram", 100, minimum=0))

    sec = ck.mapping(top.get("requant"), "arch.requant", ("lanes", "latency", "multiplier_bits"))
    requant = RequantConfig(lanes=ck.integer(sec, "lanes", "arch.requant", 16),
                            latency=ck.integer(sec, "latency", "arch.requant", REQUANT_LATENCY, minimum=0),
                            multiplier_bits=ck.integer(sec, "multiplier_bits", "arch.requant", 32, maximum=64))
    sec = ck.mapping(top.get("layernorm"), "arch.layernorm",
                     ("lanes", "latency", "passes", "arithmetic", "newton_iterations", "div_latency", "dividers",
                      "overlap_rows"))
    arithmetic = ck.choice(sec, "arithmetic", "arch.layernorm", NORM_ARITHMETIC, "integer")
    layernorm = LayerNormConfig(
        lanes=ck.integer(sec, "lanes", "arch.layernorm", 16),
        latency=ck.integer(sec, "latency", "arch.layernorm",
                           INT_NORM_PIPELINE if arithmetic == "integer" else FLOAT_NORM_LATENCY, minimum=0),
        passes=ck.integer(sec, "passes", "arch.layernorm", 2),
        arithmetic=arithmetic,
        newton_iterations=ck.integer(sec, "newton_iterations", "arch.layernorm", DEFAULT_NEWTON_ITERATIONS),
        div_latency=ck.integer(sec, "div_latency", "arch.layernorm", 24),
        dividers=ck.integer(sec, "dividers", "arch.layernorm", 1),
        overlap_rows=ck.boolean(sec, "overlap_rows", "arch.layernorm", True))
    sec = ck.mapping(top.get("vector"), "arch.vector", ("lanes", "latency", "format", "ops_per_cycle"))
    lanes = ck.integer(sec, "lanes", "arch.vector", 16)
    vector = VectorConfig(lanes=lanes, latency=ck.integer(sec, "latency", "arch.vector", 4, minimum=0),
                          format=_check_format(ck, sec, "format", "arch.vector", "float32"),
                          ops_per_cycle=ck.number(sec, "ops_per_cycle", "arch.vector", lanes, minimum=0.0,
                                                  strict=True, maximum=_MAX_RATE))

    sec = ck.mapping(top.get("timing"), "arch.timing", ("mode", "mapper", "objective", "fusion"))
    mode = ck.choice(sec, "mode", "arch.timing", TIMING_MODES, "pipelined")
    if mode == "tile" and array.dataflow != "ws":
        ck.add("arch.timing.mode", f"'tile' is the RTL weight-stationary tile's schedule; it needs dataflow ws, "
                                   f"not {array.dataflow!r}")
    mapper = ck.choice(sec, "mapper", "arch.timing", MAPPERS, "search")
    objective = ck.choice(sec, "objective", "arch.timing", MAPPER_OBJECTIVES, "latency")
    fusion = ck.boolean(sec, "fusion", "arch.timing", True)
    sec = ck.mapping(top.get("energy"), "arch.energy", ("table", "technology_scale", "sram", "sram_model"))
    table = ck.string(sec, "table", "arch.energy", "default")
    if table != "default" and base_dir is not None and not Path(table).is_absolute():
        table = str(Path(base_dir) / table)
    if table != "default" and not Path(table).is_file():
        ck.add("arch.energy.table", f"energy table file not found, not {short_repr(table)}")
    scale = ck.number(sec, "technology_scale", "arch.energy", 1.0, minimum=0.0, strict=True, maximum=1e6)
    sram_energy = ck.choice(sec, "sram", "arch.energy", SRAM_ENERGY_RULES, "flat")
    sram_model = ck.string(sec, "sram_model", "arch.energy", "default")
    if sram_model != "default" and base_dir is not None and not Path(sram_model).is_absolute():
        sram_model = str(Path(base_dir) / sram_model)
    if sram_model != "default" and not Path(sram_model).is_file():
        ck.add("arch.energy.sram_model", f"SRAM model file not found, not {short_repr(sram_model)}")
    ck.raise_if_any()
    return ArchSpec(name=name, array=array, pe=pe, clock_mhz=clock, buffers=buffers, dram=dram,
                    requant=requant, layernorm=layernorm, vector=vector, timing_mode=mode,
                    mapper=mapper, mapper_objective=objective, fusion=fusion,
                    energy_table=table, technology_scale=scale, sram_energy=sram_energy, sram_model=sram_model,
                    source=source)


def resolved_arch(arch: ArchSpec) -> dict:
    """Every field of ``arch`` with its defaults filled in, as plain data (saved in ``summary.json``)."""
    return asdict(arch)


def resolved_arch_lines(arch: ArchSpec) -> list[str]:
    """``section.key = value`` for every resolved parameter (``hwsim run -v`` logs them)."""
    def walk(value, prefix):
        if isinstance(value, dict):
            for key, sub in value.items():
                yield from walk(sub, f"{prefix}.{key}" if prefix else key)
        else:
            yield f"{prefix} = {value!r}"

    return list(walk(resolved_arch(arch), ""))


#: a unit narrower than ``1 / NARROW_UNIT_RATIO`` of the array columns feeding it is warned about
NARROW_UNIT_RATIO = 4


def arch_warnings(arch: ArchSpec) -> list[str]:
    """One line per unit far narrower than the array feeding it (``lanes * 4 < array cols``).

    The array emits up to ``cols`` results per cycle; requant, norm and vector units with far fewer
    lanes turn element-wise work (softmax over a long KV, SwiGLU) into the bottleneck.
    """
    cols = arch.array.cols
    out = []
    for unit, lanes in (("requant", arch.requant.lanes), ("layernorm", arch.layernorm.lanes),
                        ("vector", arch.vector.lanes)):
        if lanes * NARROW_UNIT_RATIO < cols:
            out.append(f"arch.{unit}.lanes = {lanes} is {cols / lanes:g}x narrower than the {cols} array columns "
                       f"feeding it; its ops may dominate the latency (set arch.{unit}.lanes)")
    return out


def load_arch(path) -> ArchSpec:
    """Read and validate an architecture YAML file."""
    path = Path(path)
    data = load_yaml_mapping(path, what="arch")
    return arch_from_dict(data, source=str(path), base_dir=path.parent)


def default_arch() -> ArchSpec:
    """The packaged default architecture (``hwsim/data/default_arch.yaml``)."""
    return load_arch(Path(__file__).resolve().parent.parent / "data" / "default_arch.yaml")


def as_arch(arch) -> ArchSpec:
    """Accept an :class:`ArchSpec`, a mapping, a path or ``None`` (the default architecture)."""
    if arch is None:
        return default_arch()
    if isinstance(arch, ArchSpec):
        return arch
    if isinstance(arch, dict):
        return arch_from_dict(arch)
    if isinstance(arch, (str, Path)):
        return load_arch(arch)
    raise TypeError(f"arch must be an ArchSpec, a mapping or a YAML path, not {arch!r}")
