"""Graph IR shared by the importers (``hwsim.models``) and the performance model (``hwsim.perf``).

A :class:`Graph` is a list of :class:`Op` in execution order over named :class:`TensorInfo` entries.
Tensors carry a shape and optionally a :class:`QuantSpec` (format, granularity, scales, zero points).
Ops carry only structure (kind, inputs, outputs, attributes); numerics live in the executors.

One op becomes one row of the per-layer table (:meth:`Graph.to_rows`): GEMM dimensions
``M, K, N`` (with ``batch`` for batched activation-activation products), multiply-accumulate count,
element count for vector ops and bytes per operand. Reshape and transpose are zero cost.

Pure numpy; no optional dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

#: GEMM-like op kinds: ``linear`` (activation x weight [K, N] + optional bias), ``matmul``
#: (activation x activation: attention scores / context), ``conv`` (lowered to GEMM by the perf model).
GEMM_KINDS = frozenset({"linear", "matmul", "conv"})
#: Row-wise normalisations (reduction over the last axis).
NORM_KINDS = frozenset({"layernorm", "rmsnorm", "softmax"})
#: Element-wise vector-unit ops.
ELEMENTWISE_KINDS = frozenset({"gelu", "silu", "relu", "swiglu", "add", "mul", "rope", "embedding", "mean_pool",
                               "quantize", "dequantize", "requant"})
#: Memory ops: ``kv_write`` appends its input (new keys or values, ``[B, kv_heads, S, head_dim]``) to the
#: KV cache tensor it outputs (``[B, kv_heads, L + S, head_dim]``), stored in the cache tensor's
#: QuantSpec format. Its cost is the appended elements, not the whole cache.
MEMORY_KINDS = frozenset({"kv_write"})
#: Zero-cost data movement (views).
ZERO_COST_KINDS = frozenset({"reshape", "transpose"})
OP_KINDS = GEMM_KINDS | NORM_KINDS | ELEMENTWISE_KINDS | MEMORY_KINDS | ZERO_COST_KINDS

GRANULARITIES = ("tensor", "channel", "group", "block")


@dataclass(frozen=True, eq=False)
class QuantSpec:
    """How a tensor is quantized.

    Parameters
    ----------
    format : str
        hwsim format name (``"int8"``, ``"uint8"``, ``"int4"``, ``"dint4"``, ``"float8_e4m3fn"``,
        ``"mxfp4"``, ...).
    granularity : {"tensor", "channel", "group", "block"}
        Scale sharing. ``channel`` has one scale per index of ``axis``; ``group``/``block`` share one
        scale per ``group_size`` consecutive elements along ``axis``.
    axis : int or None
        Channel axis (``channel``) or the grouped axis (``group``/``block``).
    group_size : int or None
    scale, zero_point : ndarray or None
        Real value = ``(code_value - zero_point) * scale``. ``None`` when not yet calibrated.
    """

    format: str
    granularity: str = "tensor"
    axis: int | None = None
    group_size: int | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"QuantSpec.granularity must be one of {GRANULARITIES}, "
                             f"not {self.granularity!r}")
        if self.granularity in ("group", "block") and not (isinstance(self.group_size, int)
                                                          and self.group_size > 0):
            raise ValueError(f"QuantSpec.group_size must be a positive int for {self.granularity!r} "
                             f"granularity, not {self.group_size!r}")

    def describe(self) -> str:
        """Short text such as ``int8/channel`` or ``uint4/group128``."""
        if self.granularity in ("group", "block"):
            return f"{self.format}/{self.granularity}{self.group_size}"
        return f"{self.format}/{self.granularity}"


@dataclass(eq=False)
class TensorInfo:
    """A named tensor: shape, storage dtype, whether it is a weight (constant) and its quantization."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    is_weight: bool = False
    quant: QuantSpec | None = None

    @property
    def size(self) -> int:
        return int(prod(self.shape))

    @property
    def bits_per_element(self) -> float:
        """Storage bits per element: the quant format's width if quantized, else the dtype's."""
        if self.quant is not None:
            digits = "".join(c for c in self.quant.format if c.isdigit())
            name = self.quant.format
            if name.startswith("float8") or name.startswith("mxfp8") or name == "mxint8":
                return 8.0
            if name.startswith("float6") or name.startswith("mxfp6"):
                return 6.0
            if name.startswith("float4") or name in ("mxfp4", "nf4", "nvfp4"):
                return 4.0
            if digits:
                return float(int(digits))
        return float(np.dtype(self.dtype).itemsize * 8)

    @property
    def nbytes(self) -> float:
        return self.size * self.bits_per_element / 8.0


@dataclass(eq=False)
class Op:
    """One operation. ``kind`` is one of :data:`OP_KINDS`; inputs/outputs name graph tensors."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict)


class Graph:
    """Ops in execution order plus their tensors.

    >>> g = Graph("toy")
    >>> _ = g.add_tensor("x", (4, 8)); _ = g.add_tensor("w", (8, 16), is_weight=True)
    >>> _ = g.add_tensor("y", (4, 16))
    >>> _ = g.add_op("fc", "linear", ["x", "w"], ["y"])
    >>> g.to_rows()[0]["macs"]
    512
    """

    def __init__(self, name: str):
        self.name = name
        self.tensors: dict[str, TensorInfo] = {}
        self.ops: list[Op] = []
        #: Constant values (weights, biases, tables) by tensor name, as float32/int arrays.
        self.weights: dict[str, np.ndarray] = {}
        #: Names of the graph's runtime inputs and outputs.
        self.inputs: tuple[str, ...] = ()
        self.outputs: tuple[str, ...] = ()

    # -- construction -------------------------------------------------------------------------
    def add_tensor(self, name: str, shape, *, dtype: str = "float32", is_weight: bool = False,
                   quant: QuantSpec | None = None) -> TensorInfo:
        if name in self.tensors:
            raise ValueError(f"graph {self.name!r}: tensor {name!r} defined twice")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"graph {self.name!r}: tensor {name!r} shape must be non-negative, "
                             f"not {shape!r}")
        info = TensorInfo(name, shape, dtype, is_weight, quant)
        self.tensors[name] = info
        return info

    def add_op(self, name: str, kind: str, inputs, outputs, **attrs) -> Op:
        if kind not in OP_KINDS:
            raise ValueError(f"graph {self.name!r}: op {name!r} has unsupported kind; expected one of "
                             f"{sorted(OP_KINDS)}, not {kind!r}")
        for t in list(inputs) + list(outputs):
            if t not in self.tensors:
                raise ValueError(f"graph {self.name!r}: op {name!r} refers to unknown tensor {t!r}")
        op = Op(name, kind, tuple(inputs), tuple(outputs), dict(attrs))
        self.ops.append(op)
        return op

    def set_quant(self, tensor: str, quant: QuantSpec | None) -> None:
        self.tensors[tensor].quant = quant

    # -- analysis -----------------------------------------------------------------------------
    def gemm_dims(self, op: Op) -> tuple[int, int, int, int]:
        """``(batch, M, K, N)`` of a GEMM-like op (``batch`` multiplies independent products)."""
        a = self.tensors[op.inputs[0]].shape
        b = self.tensors[op.inputs[1]].shape
        if op.kind == "linear":
            k, n = b[-2], b[-1]
            if a[-1] != k:
                raise ValueError(f"op {op.name!r}: input {op.inputs[0]!r} last dim {a[-1]} does not match "
                                 f"weight {op.inputs[1]!r} rows, not {k!r}")
            return 1, int(prod(a[:-1])), int(k), int(n)
        if op.kind == "conv":
            # attrs: out_hw (H, W), kernel (kh, kw); weight [kh*kw*cin, cout] already lowered.
            out = self.tensors[op.outputs[0]].shape
            return 1, int(prod(out[:-1])), int(b[-2]), int(b[-1])
        batch = int(prod(a[:-2]))
        return batch, int(a[-2]), int(a[-1]), int(b[-1])

    def to_rows(self) -> list[dict]:
        """One dict per op: name, kind, batch, M, K, N, macs, elements, bytes per operand, formats."""
        rows = []
        for op in self.ops:
            out = self.tensors[op.outputs[0]]
            row = {"name": op.name, "kind": op.kind, "batch": 0, "M": 0, "K": 0, "N": 0, "macs": 0,
                   "elements": 0, "rows": 0, "row_length": 0, "in_bytes": 0.0, "weight_bytes": 0.0,
                   "out_bytes": out.nbytes, "a_format": "", "w_format": ""}
            ins = [self.tensors[t] for t in op.inputs]
            row["in_bytes"] = float(sum(t.nbytes for t in ins if not t.is_weight))
            row["weight_bytes"] = float(sum(t.nbytes for t in ins if t.is_weight))
            if ins and ins[0].quant is not None:
                row["a_format"] = ins[0].quant.describe()
            if len(ins) > 1 and ins[1].quant is not None:
                row["w_format"] = ins[1].quant.describe()
            if op.kind in GEMM_KINDS:
                b, m, k, n = self.gemm_dims(op)
                row.update(batch=b, M=m, K=k, N=n, macs=b * m * k * n)
            elif op.kind in MEMORY_KINDS:
                row["elements"] = ins[0].size
                row["out_bytes"] = ins[0].size * out.bits_per_element / 8.0
            elif op.kind not in ZERO_COST_KINDS:
                row["elements"] = out.size
                if op.kind in NORM_KINDS:
                    row["row_length"] = out.shape[-1]
                    row["rows"] = out.size // max(out.shape[-1], 1)
            rows.append(row)
        return rows

    def to_frame(self):
        """Per-op table as a pandas DataFrame (pandas imported lazily)."""
        import pandas as pd

        return pd.DataFrame(self.to_rows())

    @property
    def total_macs(self) -> int:
        return int(sum(r["macs"] for r in self.to_rows()))

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, ops={len(self.ops)}, tensors={len(self.tensors)})"
