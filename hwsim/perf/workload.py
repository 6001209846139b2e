"""Workloads: GEMM, convolution (lowered to GEMM), LayerNorm/RMSNorm, softmax and element-wise ops.

YAML schema::

    version: 1
    name: minilm-l6-gemms
    ops:
      - {name: q_proj, type: gemm, m: 128, k: 384, n: 384, count: 6}
      - {name: scores, type: gemm, m: 128, k: 32, n: 128, count: 72, b_is_activation: true}
      - {name: ffn1, type: gemm, m: 128, k: 384, n: 1536, a_format: int8, w_format: int4, group_size: 128,
         out_format: int8}                                   # optional per-op formats (gemm and conv)
      - {name: conv1, type: conv, in_h: 224, in_w: 224, in_channels: 3, out_channels: 64,
         kernel: 7, stride: 2, padding: 3, dilation: 1, groups: 1, batch: 1}
      - {name: ln1, type: layernorm, rows: 128, cols: 384}       # or rmsnorm
      - {name: attn_softmax, type: softmax, rows: 1536, cols: 128}
      - {name: ffn_gelu, type: gelu, elements: 196608}           # gelu, silu, add, mul, relu, elementwise

``count`` repeats an op back to back (layers, heads). A convolution becomes ``groups`` GEMMs of
``M = batch*out_h*out_w``, ``K = kh*kw*in_channels/groups``, ``N = out_channels/groups`` with
``out = floor((in + 2*padding - dilation*(k-1) - 1) / stride) + 1`` (PyTorch's rule).
SCALE-Sim topology CSVs are read by :mod:`hwsim.perf.scalesim_io`, graphs lowered by
:mod:`hwsim.perf.graph_costs`; :mod:`hwsim.perf.sources` resolves any of them (and the default).

Vector-unit work per element (``VECTOR_RECIPES``) is counted in floating-point adds and multiplies:
softmax = max-compare, subtract, exp (4 mult + 4 add polynomial), sum, reciprocal multiply;
GELU (tanh form) = 4 mult + 2 add + tanh (4 mult + 4 add); SiLU = exp polynomial + add + multiply;
SwiGLU = SiLU + one multiply; RoPE = ``x*cos + rotate(x)*sin`` (2 mult + 1 add); convert
(quantize/dequantize) = one scale multiply + one add (rounding or zero point). A ``requant`` vector op
runs on the requant unit instead (``ceil(elements/lanes) + latency``).
Memory ops (:class:`MemoryOp`) move ``elements`` words of ``bits`` between the vector unit and DRAM:
``kv_write`` writes new keys/values into the KV cache (in the cache's format), ``embedding`` reads
table rows.
``NORM_RECIPES`` is the float norm unit (``layernorm.arithmetic: float``): LayerNorm per element mean
add, subtract, square (mult), variance add, scale (mult), shift (add) plus per row one divide and a
``sqrt`` (Newton iterations); RMSNorm drops the mean and subtract. The integer unit (the default)
takes its counts from :func:`hwsim.layernorm.norm_op_counts` instead (:mod:`hwsim.perf.timing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import short_repr
from hwsim.limits import budget
from hwsim.perf.config_checks import Checker
from hwsim.perf.format_info import known_format

_DIM = budget("DIM")
_MAX_TOTAL = 1 << 60

#: Floating-point ops per element of each vector-unit kind: (adds, multiplies).
VECTOR_RECIPES: dict[str, tuple[int, int]] = {
    "softmax": (7, 5),
    "gelu": (6, 8),
    "silu": (5, 5),
    "add": (1, 0),
    "mul": (0, 1),
    "relu": (1, 0),
    "swiglu": (5, 6),
    "rope": (1, 2),
    "convert": (1, 1),
    "elementwise": (1, 0),
}
#: Memory-op kinds (:class:`MemoryOp`): ``kv_write`` appends new keys/values to the KV cache in DRAM,
#: ``embedding`` gathers table rows from DRAM.
MEMORY_KINDS = ("kv_write", "embedding")
#: Float LayerNorm/RMSNorm ops: per element (adds, mults), per row (adds, mults, divides, sqrt).
NORM_RECIPES: dict[str, tuple[tuple[int, int], tuple[int, int, int, int]]] = {
    "layernorm": ((3, 2), (2, 1, 1, 1)),
    "rmsnorm": ((1, 2), (1, 1, 1, 1)),
}


@dataclass(frozen=True, kw_only=True)
class GemmOp:
    """``count`` x (A[M,K] @ B[K,N]); B is a weight unless ``b_is_activation``.

    Formats (registry names; empty = the architecture's PE defaults, as for an unquantized graph):
    ``a_format``/``b_format`` of the operands, ``group_size`` of B's scale groups (or MX blocks) along
    K (0: per tensor/channel), ``a_dynamic``/``b_dynamic`` when an operand is quantized per token at
    run time on this op, ``out_format`` of the output and the ``epilogue`` that produces it:
    ``requant`` (the requant unit; empty ``out_format`` = ``pe.output_format``) or ``float`` (a float
    scale multiply on the vector unit; the output is stored in the vector format).
    ``b_granularity`` (``tensor``/``channel``/``group``/``block``) is reported in the per-op table.
    """

    name: str
    m: int
    k: int
    n: int
    count: int = 1
    b_is_activation: bool = False
    kind: str = "gemm"
    #: format of A / B when it differs from the architecture's PE formats ("" = the arch's)
    a_format: str = ""
    b_format: str = ""
    b_granularity: str = ""
    group_size: int = 0
    a_dynamic: bool = False
    b_dynamic: bool = False
    out_format: str = ""
    epilogue: str = "requant"

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n * self.count


@dataclass(frozen=True, kw_only=True)
class NormOp:
    """LayerNorm or RMSNorm over ``rows`` rows of ``cols`` elements."""

    name: str
    kind: str
    rows: int
    cols: int
    count: int = 1

    @property
    def elements(self) -> int:
        return self.rows * self.cols * self.count

    @property
    def macs(self) -> int:
        return 0


@dataclass(frozen=True, kw_only=True)
class VectorOp:
    """Softmax (row-wise) or element-wise op on ``elements`` elements in the vector unit.

    ``int_units`` (fixed-point mode): the integer units of the kernel with their widths
    (:class:`hwsim.perf.int_units.IntUnit`), priced instead of ``VECTOR_RECIPES``; ``lut_bytes`` its tables.
    ``inputs``: activation tensors read per output element (0 = the kind's: 2 for add, mul and swiglu,
    else 1).
    """

    name: str
    kind: str
    elements: int
    count: int = 1
    int_units: tuple = ()
    lut_bytes: int = 0
    inputs: int = 0

    @property
    def input_tensors(self) -> int:
        """Activation tensors read per output element (``inputs`` or the kind's default)."""
        return self.inputs or (2 if self.kind in ("add", "mul", "swiglu") else 1)

    @property
    def total_elements(self) -> int:
        return self.elements * self.count

    @property
    def macs(self) -> int:
        return 0


@dataclass(frozen=True, kw_only=True)
class MemoryOp:
    """``kv_write`` (DRAM writes) or ``embedding`` (DRAM reads) of ``elements`` words of ``bits`` bits.

    ``bits`` = 0 means the architecture's activation (``kv_write``) or weight (``embedding``) width.
    """

    name: str
    kind: str
    elements: int
    bits: float = 0
    count: int = 1

    @property
    def macs(self) -> int:
        return 0


Op = GemmOp | NormOp | VectorOp | MemoryOp


@dataclass(frozen=True)
class Workload:
    name: str
    ops: tuple

    def __len__(self) -> int:
        return len(self.ops)


def conv_to_gemm(*, name: str, in_h: int, in_w: int, in_channels: int, out_channels: int, kernel,
                 stride=1, padding=0, dilation=1, groups: int = 1, batch: int = 1) -> GemmOp:
    """Lower a 2-D convolution to ``groups`` GEMMs (im2col); see the module docstring."""
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    out_h = (in_h + 2 * ph - dh * (kh - 1) - 1) // sh + 1  # integer floor: exact for any size
    out_w = (in_w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"conv {name!r}: kernel does not fit the padded input, output would be "
                         f"{out_h}x{out_w}, not a positive size")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"conv {name!r}: channels must be divisible by groups, not {groups!r}")
    return GemmOp(name=name, m=batch * out_h * out_w, k=kh * kw * in_channels // groups,
                  n=out_channels // groups, count=groups, kind="conv")


def _pair(v):
    if isinstance(v, (list, tuple)):  # [k] means k x k, like a scalar
        return int(v[0]), int(v[-1])
    return int(v), int(v)


#: Optional per-op formats of gemm/conv entries (empty: the architecture's PE formats).
_FORMAT_KEYS = ("a_format", "w_format", "group_size", "out_format")


def _op_formats(ck: Checker, sec: dict, path: str) -> dict:
    """GemmOp format fields from a gemm/conv entry: registry names, group size along K (0 = none)."""
    out = {}
    for key, field in (("a_format", "a_format"), ("w_format", "b_format"), ("out_format", "out_format")):
        if key in sec:
            value = sec[key]
            if not (isinstance(value, str) and known_format(value)):
                ck.add(f"{path}.{key}", f"expected a registry format name such as 'int8' or 'float8_e4m3fn', "
                                        f"not {short_repr(value)}")
            else:
                out[field] = value
    if "group_size" in sec:
        out["group_size"] = ck.integer(sec, "group_size", path, maximum=_DIM)
        out["b_granularity"] = "group"
    return out


_OP_KEYS = {
    "gemm": ("name", "type", "m", "k", "n", "count", "b_is_activation") + _FORMAT_KEYS,
    "conv": ("name", "type", "in_h", "in_w", "in_channels", "out_channels", "kernel", "stride", "padding",
             "dilation", "groups", "batch", "count") + _FORMAT_KEYS,
    "layernorm": ("name", "type", "rows", "cols", "count"),
    "rmsnorm": ("name", "type", "rows", "cols", "count"),
    "softmax": ("name", "type", "rows", "cols", "elements", "count"),
}
for _kind in VECTOR_RECIPES:
    _OP_KEYS.setdefault(_kind, ("name", "type", "elements", "count"))


def _pair_ok(ck: Checker, sec: dict, key: str, path: str, default, minimum: int) -> None:
    value = sec.get(key, default)
    items = value if isinstance(value, (list, tuple)) else [value]
    if len(items) not in (1, 2) or any(isinstance(x, bool) or not isinstance(x, int) or not minimum <= x <= _DIM
                                       for x in items):
        ck.add(f"{path}.{key}", f"expected an integer >= {minimum} (<= {_DIM:,}) or a pair of them, "
                                f"not {short_repr(value)}")


def _parse_op(ck: Checker, raw, path: str):
    if not isinstance(raw, dict):
        ck.add(path, f"expected a mapping, not {short_repr(raw)}")
        return None
    kind = raw.get("type")
    if kind not in _OP_KEYS:
        ck.add(f"{path}.type", f"expected one of {sorted(_OP_KEYS)}, not {short_repr(kind)}")
        return None
    sec = ck.mapping(raw, path, _OP_KEYS[kind])
    name = ck.string(sec, "name", path, path.replace("workload.", ""))
    count = ck.integer(sec, "count", path, 1)
    if kind == "gemm":
        b_act = ck.boolean(sec, "b_is_activation", path, False)
        return GemmOp(name=name, m=ck.integer(sec, "m", path), k=ck.integer(sec, "k", path),
                      n=ck.integer(sec, "n", path), count=count, b_is_activation=b_act,
                      **_op_formats(ck, sec, path))
    if kind == "conv":
        ints = {k: ck.integer(sec, k, path) for k in ("in_h", "in_w", "in_channels", "out_channels")}
        ints["groups"] = ck.integer(sec, "groups", path, 1)
        ints["batch"] = ck.integer(sec, "batch", path, 1)
        _pair_ok(ck, sec, "kernel", path, None, 1)
        _pair_ok(ck, sec, "stride", path, 1, 1)
        _pair_ok(ck, sec, "padding", path, 0, 0)
        _pair_ok(ck, sec, "dilation", path, 1, 1)
        if ck.problems:
            return None
        try:
            op = conv_to_gemm(name=name, kernel=sec["kernel"], stride=sec.get("stride", 1),
                              padding=sec.get("padding", 0), dilation=sec.get("dilation", 1), **ints)
        except ValueError as exc:
            ck.add(path, str(exc))
            return None
        return GemmOp(name=op.name, m=op.m, k=op.k, n=op.n, count=op.count * count, kind="conv",
                      **_op_formats(ck, sec, path))
    if kind in ("layernorm", "rmsnorm"):
        return NormOp(name=name, kind=kind, rows=ck.integer(sec, "rows", path),
                      cols=ck.integer(sec, "cols", path), count=count)
    if kind == "softmax" and "elements" not in sec:
        elements = ck.integer(sec, "rows", path) * ck.integer(sec, "cols", path)
    else:
        elements = ck.integer(sec, "elements", path)
    return VectorOp(name=name, kind=kind, elements=elements, count=count)


def workload_from_dict(data: dict, *, source: str = "<dict>") -> Workload:
    """Validate a parsed workload mapping (see module docstring) and build a :class:`Workload`."""
    ck = Checker(source)
    top = ck.mapping(data, "workload", ("version", "name", "ops", "description"))
    if top.get("version", 1) != 1:
        ck.add("workload.version", f"expected 1, not {short_repr(top.get('version'))}")
    name = ck.string(top, "name", "workload", Path(source).stem if source != "<dict>" else "workload")
    raw_ops = top.get("ops")
    if not isinstance(raw_ops, list) or not raw_ops:
        ck.add("workload.ops", f"expected a non-empty list of ops, not {short_repr(raw_ops)}")
        raw_ops = []
    ops = [_parse_op(ck, raw, f"workload.ops[{i}]") for i, raw in enumerate(raw_ops)]
    for i, op in enumerate(ops):  # counts stay exact in the int64 columns of every report
        work = 0 if op is None else max(op.macs, getattr(op, "total_elements", 0), getattr(op, "elements", 0))
        if work >= _MAX_TOTAL:
            ck.add(f"workload.ops[{i}]", f"{work:,} MACs or elements exceed 2^60 (reports count in int64), "
                                         "not simulated")
    ck.raise_if_any()
    return Workload(name, tuple(ops))


__all__ = ["GemmOp", "MemoryOp", "NormOp", "VectorOp", "Workload", "conv_to_gemm", "workload_from_dict"]
