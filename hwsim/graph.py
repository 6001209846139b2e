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

from dataclasses import dataclass, field, replace
from math import prod
from types import MappingProxyType

import numpy as np

from hwsim.qspec import GRANULARITIES, QuantSpec

#: GEMM-like op kinds: ``linear`` (activation x weight [K, N] + optional bias), ``matmul``
#: (activation x activation: attention scores / context), ``conv`` (lowered to GEMM by the perf model).
GEMM_KINDS = frozenset({"linear", "matmul", "conv"})
#: Row-wise normalisations (reduction over the last axis).
NORM_KINDS = frozenset({"layernorm", "rmsnorm", "softmax"})
#: Element-wise vector-unit ops.
ELEMENTWISE_KINDS = frozenset({"gelu", "silu", "relu", "swiglu", "add", "mul", "rope", "embedding", "mean_pool",
                               "quantize", "dequantize", "requant", "hadamard", "select"})
#: ``select``: columns ``attrs['index']`` of the last axis (LLM.int8()'s outlier / regular split).
#: ``hadamard``: the online rotation ``x @ H_n / sqrt(n)`` over the last axis (:mod:`hwsim.hadamard`; QuaRot).
#: Memory ops: ``kv_write`` appends its input (new keys or values, ``[B, kv_heads, S, head_dim]``) to the
#: KV cache tensor it outputs (``[B, kv_heads, L + S, head_dim]``), stored in the cache tensor's
#: QuantSpec format. Its cost is the appended elements, not the whole cache.
MEMORY_KINDS = frozenset({"kv_write"})
#: Zero-cost data movement (views).
ZERO_COST_KINDS = frozenset({"reshape", "transpose"})
OP_KINDS = GEMM_KINDS | NORM_KINDS | ELEMENTWISE_KINDS | MEMORY_KINDS | ZERO_COST_KINDS

__all__ = ["GRANULARITIES", "OP_KINDS", "FrozenGraphError", "Graph", "Op", "QuantSpec", "TensorInfo"]


@dataclass(frozen=True, eq=False)
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
        """Storage bits per element: the quant format's width (MX: plus the shared scale per block),
        else the dtype's."""
        if self.quant is not None:
            from hwsim.formats import get_format

            spec = get_format(self.quant.format)
            if spec.kind == "mx":
                return float(spec.element.bits) + spec.scale.bits / spec.block_size
            return float(spec.bits)
        return float(np.dtype(self.dtype).itemsize * 8)

    @property
    def nbytes(self) -> float:
        return self.size * self.bits_per_element / 8.0


@dataclass(frozen=True, eq=False)
class Op:
    """One operation. ``kind`` is one of :data:`OP_KINDS`; inputs/outputs name graph tensors.

    ``reshape`` ops carry ``shape`` in ONNX convention (``0`` copies the input dimension, ``-1`` is
    inferred) so one graph runs any batch/sequence length.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(default_factory=dict)


class FrozenGraphError(RuntimeError):
    """Raised when a frozen graph is modified (passes return new graphs: use :meth:`Graph.edit`)."""


class Graph:
    """Ops in execution order plus their tensors; immutable once :meth:`freeze` is called.

    A pass never mutates a frozen graph: it calls :meth:`edit` (an unfrozen copy sharing the unchanged
    tensors and weight arrays), changes the copy and freezes it.

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
        #: Free-form facts about the model (``family``: ``"encoder"``/``"llm"``, ...).
        self.meta: dict = {}
        self.frozen = False

    # -- construction -------------------------------------------------------------------------
    def _check_mutable(self) -> None:
        if self.frozen:
            raise FrozenGraphError(f"graph {self.name!r} is frozen; passes must work on graph.edit()")

    def add_tensor(self, name: str, shape, *, dtype: str = "float32", is_weight: bool = False,
                   quant: QuantSpec | None = None) -> TensorInfo:
        self._check_mutable()
        if name in self.tensors:
            raise ValueError(f"graph {self.name!r}: tensor {name!r} defined twice")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"graph {self.name!r}: tensor {name!r} shape must be non-negative, "
                             f"not {shape!r}")
        info = TensorInfo(name, shape, dtype, is_weight, quant)
        self.tensors[name] = info
        return info

    def _new_op(self, name: str, kind: str, inputs, outputs, attrs: dict) -> Op:
        if kind not in OP_KINDS:
            raise ValueError(f"graph {self.name!r}: op {name!r} has unsupported kind; expected one of "
                             f"{sorted(OP_KINDS)}, not {kind!r}")
        for t in list(inputs) + list(outputs):
            if t not in self.tensors:
                raise ValueError(f"graph {self.name!r}: op {name!r} refers to unknown tensor {t!r}")
        if kind == "reshape" and "shape" not in attrs:  # fixed-shape graphs: the declared output shape
            attrs = {**attrs, "shape": self.tensors[outputs[0]].shape}
        return Op(name, kind, tuple(inputs), tuple(outputs), dict(attrs))

    def add_op(self, name: str, kind: str, inputs, outputs, **attrs) -> Op:
        self._check_mutable()
        op = self._new_op(name, kind, inputs, outputs, attrs)
        self.ops.append(op)
        return op

    def insert_op(self, after: str, name: str, kind: str, inputs, outputs, **attrs) -> Op:
        """Insert a new op right after the op named ``after`` (graph rewrites)."""
        self._check_mutable()
        op = self._new_op(name, kind, inputs, outputs, attrs)
        index = next((i for i, o in enumerate(self.ops) if o.name == after), None)
        if index is None:
            raise ValueError(f"graph {self.name!r}: no op named {after!r} to insert after")
        self.ops.insert(index + 1, op)
        return op

    def insert_op_before(self, before: str, name: str, kind: str, inputs, outputs, **attrs) -> Op:
        """Insert a new op right before the op named ``before`` (graph rewrites)."""
        self._check_mutable()
        op = self._new_op(name, kind, inputs, outputs, attrs)
        index = next((i for i, o in enumerate(self.ops) if o.name == before), None)
        if index is None:
            raise ValueError(f"graph {self.name!r}: no op named {before!r} to insert before")
        self.ops.insert(index, op)
        return op

    def rewire(self, op_name: str, old: str, new: str) -> None:
        """Make op ``op_name`` read tensor ``new`` where it read ``old``."""
        self._check_mutable()
        for i, op in enumerate(self.ops):
            if op.name == op_name:
                self.ops[i] = replace(op, inputs=tuple(new if t == old else t for t in op.inputs))
                return
        raise ValueError(f"graph {self.name!r}: no op named {op_name!r}")

    def untie(self, op_name: str, tensor: str) -> str:
        """Give op ``op_name`` its own copy of a constant that other ops also read (tied embeddings: a pass
        that rescales the lm_head must not rescale the embedding table); returns the tensor it now reads."""
        self._check_mutable()
        readers = [op for op in self.ops if tensor in op.inputs]
        if len(readers) <= 1:
            return tensor
        name = f"{tensor}@{op_name}"
        if name not in self.tensors:
            info = self.tensors[tensor]
            self.add_tensor(name, info.shape, dtype=info.dtype, is_weight=True, quant=info.quant)
            self.weights[name] = self.weights[tensor]
        self.rewire(op_name, tensor, name)
        return name

    def set_quant(self, tensor: str, quant: QuantSpec | None) -> None:
        self._check_mutable()
        self.tensors[tensor] = replace(self.tensors[tensor], quant=quant)

    def set_weight(self, tensor: str, value: np.ndarray) -> None:
        """Replace a constant (the shape must stay the same)."""
        self._check_mutable()
        value = np.asarray(value)
        if tuple(value.shape) != self.tensors[tensor].shape:
            raise ValueError(f"graph {self.name!r}: weight {tensor!r} must keep shape "
                             f"{self.tensors[tensor].shape}, not {value.shape!r}")
        self.weights[tensor] = value

    def freeze(self) -> Graph:
        """Make the graph immutable (weights become read-only arrays); returns ``self``."""
        if not self.frozen:
            for value in self.weights.values():
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
            self.ops = tuple(self.ops)
            self.tensors = MappingProxyType(dict(self.tensors))
            self.weights = MappingProxyType(dict(self.weights))
            self.frozen = True
        return self

    def edit(self, name: str | None = None) -> Graph:
        """An unfrozen copy for a pass (tensor infos, ops and weight arrays are shared, not copied)."""
        g = Graph(self.name if name is None else name)
        g.tensors = dict(self.tensors)
        g.ops = list(self.ops)
        g.weights = dict(self.weights)
        g.inputs, g.outputs = tuple(self.inputs), tuple(self.outputs)
        g.meta = dict(self.meta)
        return g

    # -- queries ------------------------------------------------------------------------------
    def op(self, name: str) -> Op:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"graph {self.name!r}: no op named {name!r}")

    def consumers(self) -> dict[str, list[Op]]:
        """Ops reading each tensor, in execution order."""
        users: dict[str, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                users.setdefault(t, []).append(op)
        return users

    def producers(self) -> dict[str, Op]:
        return {t: op for op in self.ops for t in op.outputs}

    def quant(self, tensor: str) -> QuantSpec | None:
        return self.tensors[tensor].quant

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
