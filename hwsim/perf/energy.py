"""Energy = access/operation counts x energy table, as a pure function.

The table (``hwsim/data/energy_45nm.yaml`` by default; documented there, with its sources) holds
per-32-bit energies of the primitive components and the operation recipes of the requant, divide
and square-root steps. :func:`op_energy` turns one op's :class:`~hwsim.perf.timing.OpCounts` into an
:class:`EnergyBreakdown` (pJ)::

    mac         = macs * mac_pj(a, w, accumulator_bits)   # PE-area rule, hwsim.perf.mac_energy
    rf          = macs * (a_bits + w_bits + 2 * accumulator_bits) * rf_pj / 32
    sram_<op>   = words * bits * sram_pj / 32 * f_<op> (ifmap, weight, ofmap incl. partial sums)
    dram_<op>   = words * bits * dram_pj / 32
    requant     = outputs * (mult(acc, multiplier) + int_add(acc) + int_add(32) + 2 * int_add(32))
    norm        = integer or float norm unit, below
    vector      = adds * fp_add(vector format) + mults * fp_mult(vector format)
                  (fixed-point mode: the integer units at their widths, int_units_pj / hwsim.perf.int_units)
    act_quant   = quant_adds * fp_add(vector) + quant_mults * fp_mult(vector)       # per-token operands
    epilogue    = epilogue_adds * fp_add(vector) + epilogue_mults * fp_mult(vector) # group/MX, float epilogue

``f_<op>`` is 1 (``energy.sram: flat``) or :func:`hwsim.perf.sram.sram_energy_factor` of the operand's
buffer capacity (``energy.sram: capacity``; :func:`sram_factors`). ``a``/``w`` are the op's own formats
(:func:`hwsim.perf.timing.gemm_formats`); the per-token and epilogue counts are :mod:`hwsim.perf.epilogue`'s.

Norm unit, ``layernorm.arithmetic: integer`` (hwsim's golden integer LayerNorm/RMSNorm). The op
counts per row are :func:`hwsim.layernorm.norm_op_counts` ``(cols, kind, newton_iterations)``
(the Newton square root is charged through its divides, adds and shifts, not separately); the
widths are those documented in :mod:`hwsim.layernorm` for ``N = cols`` (:func:`int_norm_widths`;
N = 384 LayerNorm: d 17, S2 43, r 45, z 18 bits)::

    norm = (add + shift) * int_add(S2 bits)                       # adders sized for the S2 accumulator
         + mult * mean(mult(d, d), mult(d, r), mult(z, multiplier_bits))   # square, d*r, gamma
         + div * div_bits * subtracts_per_quotient_bit * int_add(div_bits) # div_bits = max(S2, r) bits
         + requant * requant_recipe                               # the final requant, as above

per row, times rows. ``layernorm.arithmetic: float`` (``NORM_RECIPES``, vector-unit format)::

    norm = elements * (e_add * fp_add + e_mult * fp_mult)
         + rows * (r_add * fp_add + r_mult * fp_mult + r_div * divide + r_sqrt * sqrt_iterations * sqrt_it)

``mac_pj(a, w, acc)`` is the synthesised PE's area times the int8 x int8 MAC energy per unit area
(:mod:`hwsim.perf.mac_energy`), and ``mult(a, w) + int_add(acc)`` for a pair without a synthesised PE.
``mult(a, w)`` is ``int_mult * a_bits * w_bits / 32**2`` for two integer formats, else
``fp_mult * sig_a * sig_w / 24**2 + int_add(exponent bits)`` (significands include the hidden bit;
an integer operand's significand is its width). No leakage is modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from hwsim.layernorm import C_FRAC, F_R, F_Z, IntNormParams
from hwsim.perf.config_checks import Checker, load_yaml_mapping
from hwsim.perf.format_info import FormatInfo, format_info
from hwsim.perf.mac_energy import mac_pj
from hwsim.perf.workload import NORM_RECIPES

_COMPONENTS = {"int_add": "op_pj", "fp_add": "op_pj", "int_mult": "op_pj", "fp_mult": "op_pj",
               "register_file": "access_pj", "sram": "access_pj", "dram": "access_pj"}
_RECIPES = {"requant": ("multiplies", "shift_adds", "adds", "clamp_adds"),
            "divide": ("fp_mult", "fp_add"), "sqrt_iteration": ("fp_mult", "fp_add"),
            "int_divide": ("subtracts_per_quotient_bit",)}
#: recipe entries whose default (when a user table leaves them out) is not 0
_RECIPE_DEFAULTS = {("int_divide", "subtracts_per_quotient_bit"): 1}
#: width W_x of the integer norm's pre-shifted input (hwsim.layernorm's default ``x_bits``)
INT_NORM_X_BITS = next(f.default for f in fields(IntNormParams) if f.name == "x_bits")


def int_norm_widths(n: int, kind: str, multiplier_bits: int = 32, x_bits: int = INT_NORM_X_BITS) -> dict:
    """Bit widths of the golden integer norm datapath for rows of ``n`` (hwsim/layernorm.py's table).

    ``d`` = x - mu (``W_x + 1``; RMSNorm ``W_x``), ``s2`` = sum of d^2 (``2 d + ceil(log2 N)``),
    ``r`` = reciprocal ``round(C 2^F_R / sigma)`` (``bits(C) + F_R``, C = round(sqrt(N) 2^16)),
    ``z`` = normalised value (``F_Z + bits(isqrt(N)) + 1``), ``gamma`` = the per-channel multiplier;
    ``add`` = adder width (the S2 accumulator), ``div`` = divider width (``max(s2, r)``).
    """
    log_n = math.ceil(math.log2(n)) if n > 1 else 0
    d = x_bits + (1 if kind == "layernorm" else 0)
    s2 = 2 * d + log_n
    r = round(math.sqrt(n) * 2**C_FRAC).bit_length() + F_R
    z = F_Z + math.isqrt(n).bit_length() + 1
    return {"x": x_bits, "d": d, "s2": s2, "r": r, "z": z, "gamma": multiplier_bits, "add": s2, "div": max(s2, r)}


@dataclass(frozen=True)
class EnergyTable:
    """Validated energy table: pJ per 32-bit primitive, times ``technology_scale``."""

    name: str
    int_add: float
    fp_add: float
    int_mult: float
    fp_mult: float
    register_file: float
    sram: float
    dram: float
    recipes: dict
    reference_bits: int = 32
    float_reference_significand_bits: int = 24
    technology_scale: float = 1.0
    source: str = "<dict>"

    def scaled(self, factor: float) -> EnergyTable:
        """Copy with every energy multiplied by ``factor`` (technology scaling)."""
        if factor == 1.0:
            return self
        vals = {k: getattr(self, k) * factor for k in _COMPONENTS}
        return EnergyTable(name=self.name, recipes=self.recipes, reference_bits=self.reference_bits,
                           float_reference_significand_bits=self.float_reference_significand_bits,
                           technology_scale=self.technology_scale * factor, source=self.source, **vals)

    # -- primitive energies (pJ) ----------------------------------------------------------------
    def int_add_pj(self, bits: float) -> float:
        return self.int_add * bits / self.reference_bits

    def fp_add_pj(self, fmt: FormatInfo) -> float:
        return self.fp_add * fmt.significand_bits / self.float_reference_significand_bits

    def mult_pj(self, a: FormatInfo, b: FormatInfo) -> float:
        if a.kind == "int" and b.kind == "int":
            return self.int_mult * a.bits * b.bits / self.reference_bits ** 2
        sig = self.float_reference_significand_bits
        return (self.fp_mult * a.significand_bits * b.significand_bits / sig ** 2
                + self.int_add_pj(max(a.exponent_bits, b.exponent_bits)))

    def per_bit(self, component: str) -> float:
        return getattr(self, component) / self.reference_bits


def energy_table_from_dict(data: dict, *, source: str = "<dict>") -> EnergyTable:
    ck = Checker(source)
    top = ck.mapping(data, "energy", ("version", "name", "description", "technology_scale", "reference_bits",
                                      "float_reference_significand_bits", "components", "recipes"))
    comps = ck.mapping(top.get("components"), "energy.components", tuple(_COMPONENTS))
    vals = {}
    for comp, action in _COMPONENTS.items():
        sec = ck.mapping(comps.get(comp), f"energy.components.{comp}", (action,))
        if comp not in comps:
            ck.add(f"energy.components.{comp}", "required component is missing")
            vals[comp] = 0.0
            continue
        vals[comp] = ck.number(sec, action, f"energy.components.{comp}")
    rec_raw = ck.mapping(top.get("recipes"), "energy.recipes", tuple(_RECIPES) + ("sqrt_iterations",))
    recipes = {}
    for name, keys in _RECIPES.items():
        sec = ck.mapping(rec_raw.get(name), f"energy.recipes.{name}", keys)
        recipes[name] = {k: ck.integer(sec, k, f"energy.recipes.{name}", _RECIPE_DEFAULTS.get((name, k), 0),
                                       minimum=0) for k in keys}
    recipes["sqrt_iterations"] = ck.integer(rec_raw, "sqrt_iterations", "energy.recipes", 4, minimum=0)
    scale = ck.number(top, "technology_scale", "energy", 1.0, minimum=0.0, strict=True)
    ref = ck.integer(top, "reference_bits", "energy", 32)
    fref = ck.integer(top, "float_reference_significand_bits", "energy", 24)
    name = ck.string(top, "name", "energy", "energy-table")
    ck.raise_if_any()
    table = EnergyTable(name=name, recipes=recipes, reference_bits=ref, float_reference_significand_bits=fref,
                        source=source, **vals)
    return table.scaled(scale)


_DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "energy_45nm.yaml"
_CACHE: dict[str, EnergyTable] = {}


def load_energy_table(path="default") -> EnergyTable:
    """Load (and cache) an energy table YAML; ``"default"`` is the lecture's 45 nm table."""
    key = str(_DEFAULT_PATH if path == "default" else Path(path))
    if key not in _CACHE:
        _CACHE[key] = energy_table_from_dict(load_yaml_mapping(key, what="energy"), source=key)
    return _CACHE[key]


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one op (or a sum of ops) in pJ, by component; addable."""

    mac: float = 0.0
    rf: float = 0.0
    sram_ifmap: float = 0.0
    sram_weight: float = 0.0
    sram_ofmap: float = 0.0
    dram_ifmap: float = 0.0
    dram_weight: float = 0.0
    dram_ofmap: float = 0.0
    requant: float = 0.0
    norm: float = 0.0
    vector: float = 0.0
    act_quant: float = 0.0
    epilogue: float = 0.0

    def __add__(self, other: EnergyBreakdown) -> EnergyBreakdown:
        return EnergyBreakdown(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def to_dict(self, prefix: str = "energy_", suffix: str = "_pj") -> dict[str, float]:
        out = {f"{prefix}{f.name}{suffix}": getattr(self, f.name) for f in fields(self)}
        out[f"{prefix}total{suffix}"] = self.total
        return out


def int_units_pj(units, table: EnergyTable) -> float:
    """Energy (pJ) of fixed-point integer units (:mod:`hwsim.perf.int_units`) at their widths."""
    sram_bit = table.per_bit("sram")
    sub = table.recipes["int_divide"]["subtracts_per_quotient_bit"]
    total = 0.0
    for x in units:
        if x.op == "add":
            each = table.int_add_pj(x.a_bits)
        elif x.op == "mult":
            each = table.mult_pj(FormatInfo(f"int{x.a_bits}", x.a_bits, x.a_bits, "int"),
                                 FormatInfo(f"int{x.b_bits}", x.b_bits, x.b_bits, "int"))
        elif x.op == "lut":
            each = x.a_bits * sram_bit
        else:  # div: b_bits quotient bits, each a subtract of a_bits
            each = x.b_bits * sub * table.int_add_pj(x.a_bits)
        total += x.count * each
    return total


def sram_factors(arch) -> tuple[float, float, float]:
    """Per-bit SRAM energy factors of the (ifmap, weight, ofmap) buffers of ``arch`` (module docstring)."""
    if arch.sram_energy != "capacity":
        return (1.0, 1.0, 1.0)
    from hwsim.perf.sram import sram_energy_factor

    bufs = arch.buffers
    return tuple(sram_energy_factor(bufs.of(x).size_kib, arch.sram_model) for x in ("ifmap", "weight", "ofmap"))


def op_energy(counts, *, a_format: str, w_format: str, accumulator_bits: int, multiplier_bits: int,
              vector_format: str, table: EnergyTable,
              sram_factors: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> EnergyBreakdown:
    """Pure function: energy (pJ) of one op's counts under ``table`` (formulas in the module docstring)."""
    c = counts
    a = format_info(a_format)
    w = format_info(w_format)
    acc = accumulator_bits
    mac = c.macs * mac_pj(table, a_format, w_format, acc)
    rf = c.macs * (a.bits + w.bits + 2 * acc) * table.per_bit("register_file")
    sram_bit, dram_bit = table.per_bit("sram"), table.per_bit("dram")
    final_writes = c.sram_ofmap_writes - c.sram_psum_writes
    sram_ofmap_bits = final_writes * c.out_bits + (c.sram_psum_writes + c.sram_ofmap_reads) * c.psum_bits
    dram_ofmap_bits = c.dram_ofmap_writes * c.out_bits + (c.dram_psum_writes + c.dram_psum_reads) * c.psum_bits
    r = table.recipes["requant"]
    acc_fmt = FormatInfo(f"int{acc}", acc, acc, "int")
    mul_fmt = FormatInfo(f"int{multiplier_bits}", multiplier_bits, multiplier_bits, "int")
    requant_each = (r["multiplies"] * table.mult_pj(acc_fmt, mul_fmt) + r["shift_adds"] * table.int_add_pj(acc)
                    + (r["adds"] + r["clamp_adds"]) * table.int_add_pj(table.reference_bits))
    v = format_info(vector_format)
    fadd, fmul = table.fp_add_pj(v), table.mult_pj(v, v)
    norm = 0.0
    if c.norm_elements and c.norm_arithmetic == "integer":
        wd = int_norm_widths(c.n, c.kind, multiplier_bits)

        def imul(x: int, y: int) -> float:
            return table.mult_pj(FormatInfo(f"int{x}", x, x, "int"), FormatInfo(f"int{y}", y, y, "int"))

        mult_each = (imul(wd["d"], wd["d"]) + imul(wd["d"], wd["r"]) + imul(wd["z"], wd["gamma"])) / 3
        div_each = wd["div"] * table.recipes["int_divide"]["subtracts_per_quotient_bit"] * table.int_add_pj(wd["div"])
        norm = ((c.norm_adds + c.norm_shifts) * table.int_add_pj(wd["add"]) + c.norm_mults * mult_each
                + c.norm_divides * div_each + c.norm_requants * requant_each)
    elif c.norm_elements:
        (e_add, e_mul), (r_add, r_mul, r_div, r_sqrt) = NORM_RECIPES[c.kind]
        div = table.recipes["divide"]
        it = table.recipes["sqrt_iteration"]
        div_pj = div["fp_mult"] * fmul + div["fp_add"] * fadd
        sqrt_pj = table.recipes["sqrt_iterations"] * (it["fp_mult"] * fmul + it["fp_add"] * fadd)
        norm = (c.norm_elements * (e_add * fadd + e_mul * fmul)
                + c.norm_rows * (r_add * fadd + r_mul * fmul + r_div * div_pj + r_sqrt * sqrt_pj))
    vector = c.vector_adds * fadd + c.vector_mults * fmul
    if c.int_units:
        vector = int_units_pj(c.int_units, table)
    return EnergyBreakdown(
        mac=mac, rf=rf,
        sram_ifmap=c.sram_ifmap_reads * c.ifmap_bits * sram_bit * sram_factors[0],
        sram_weight=c.sram_weight_reads * c.weight_bits * sram_bit * sram_factors[1],
        sram_ofmap=sram_ofmap_bits * sram_bit * sram_factors[2],
        dram_ifmap=c.dram_ifmap_reads * c.ifmap_bits * dram_bit,
        dram_weight=c.dram_weight_reads * c.weight_bits * dram_bit,
        dram_ofmap=dram_ofmap_bits * dram_bit,
        requant=c.requant_elements * requant_each,
        norm=norm,
        vector=vector,
        act_quant=c.quant_adds * fadd + c.quant_mults * fmul,
        epilogue=c.epilogue_adds * fadd + c.epilogue_mults * fmul,
    )
