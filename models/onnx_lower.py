"""Lower an ONNX model (float or QDQ) to an executable :class:`hwsim.graph.Graph` with QuantSpecs.

The lowered graph is what :class:`hwsim.int_executor.IntegerExecutor` runs — the same executor as the
packaged MiniLM and SmolLM2 graphs — and what the performance model prices. The model is traced once on
example feeds (:meth:`OnnxModel.run`); then every node is

* **static** (depends on initializers and input *shapes* only: shape arithmetic, position-id slices,
  constant folding) — folded to a constant at the traced input shape, or
* **dynamic** — lowered to hwsim op kinds:

  ============================================  ============================================================
  ONNX                                          hwsim
  ============================================  ============================================================
  ``QuantizeLinear`` (activation)               ``quantize`` to a per-tensor uint8/int8 QuantSpec
  ``DequantizeLinear`` of an initializer        weight tensor carrying its codes (per-tensor or per-column)
  ``DequantizeLinear`` of an activation         the quantized tensor itself (consumers read its codes)
  ``MatMul`` (+ ``Add`` of a [N] constant)      ``linear`` (weight [K, N], bias folded in)
  ``MatMul`` → ``QuantizeLinear``               the GEMM with that output spec (requant in its epilogue)
  ``MatMul`` of two activations (+ ``Div``/
  ``Mul`` by a constant scalar)                 ``matmul`` with ``scale``
  ``Add`` of a mask-derived bias → ``Softmax``  ``softmax`` with the key mask (0/1 input)
  ``Softmax``, ``LayerNormalization``           ``softmax``, ``layernorm``
  ``x·0.5·(1 + erf(x/√2))`` (5 nodes)            ``gelu``
  ``Gather`` (table, ids) (+ constant ``Add``)  ``embedding`` (constant addends folded into its position rows)
  ``Mul`` by mask → ``ReduceSum`` → ``Div``      ``mean_pool``
  ``Add`` / ``Mul`` (activation, activation or
  constant); ``Div`` by a constant              ``add`` / ``mul`` (``mul`` by the float32 reciprocal)
  ``Reshape`` / ``Transpose``                    ``reshape`` (ONNX ``0`` = copy dimension) / ``transpose``
  ``Identity`` / one-input ``Concat``           aliases
  ============================================  ============================================================

Every fused pattern is checked numerically against the traced values before it is accepted (e.g. the
mask add + softmax against hwsim's masked softmax), so a look-alike that computes something else is an
error, not a silent change. A dynamic node no rule covers raises a ``ValueError`` naming the node and its
op type. Constants folded from shapes (position rows, reshape targets that are not copies of the input's
dimensions) fix the graph to at most the traced sequence length.
"""

from __future__ import annotations

import numpy as np

from hwsim.graph import Graph
from hwsim.qspec import QuantSpec

#: Tolerance of the numeric check of fused patterns (float32 traced values vs hwsim's float64 kernels).
PATTERN_RTOL = 1e-4


class OnnxLoweringError(ValueError):
    """A dynamic ONNX node that no lowering rule covers (the message names the node and op type)."""


def lower_onnx(model, feeds: dict, *, fold_requant: bool = True) -> Graph:
    """The frozen hwsim graph of ``model`` (an :class:`~hwsim.models.onnx_import.OnnxModel`), traced on
    ``feeds``; see the module docstring.

    ``fold_requant``: a ``QuantizeLinear`` of a GEMM output becomes that GEMM's output spec, so the
    accelerator's requant unit computes it (32-bit multiplier, gemmlowp double rounding: in about 0.1 % of
    outputs one LSB away from ONNX's float ``QuantizeLinear``). ``False`` keeps it a separate ``quantize``
    of the GEMM's float epilogue — ONNX's own rounding (in float64 instead of float32).
    """
    return _Lowering(model, feeds, fold_requant).run()


def _node_name(node) -> str:
    return node.name or node.output[0]


class _Lowering:
    def __init__(self, model, feeds: dict, fold_requant: bool = True):
        from hwsim.models.onnx_import import _attrs

        self.fold_requant = fold_requant
        self.model = model
        self.attrs = _attrs
        self.env = model.run(feeds, keep=True)
        self.graph = Graph(model.name)
        self.consumers: dict[str, list] = {}
        for node in model.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.sources = self._data_sources()
        self.mask_inputs = self._mask_inputs()
        self.alias: dict[str, str] = {}
        self.done: set[int] = set()
        self._uid = 0

    # -- analysis ------------------------------------------------------------------------------------
    def _data_sources(self) -> dict[str, frozenset]:
        """For each dynamic value, the data inputs it depends on (``Shape`` cuts the dependence)."""
        sources = {name: frozenset([name]) for name in self.model.input_names}
        for node in self.model.nodes:
            if node.op_type == "Shape":
                continue
            deps = frozenset().union(*(sources.get(i, frozenset()) for i in node.input if i))
            if deps:
                for out in node.output:
                    sources[out] = deps
        return sources

    def _mask_inputs(self) -> set[str]:
        """Integer inputs never used as ``Gather`` indices: 0/1 masks (attention, pooling)."""
        ids = {n.input[1] for n in self.model.nodes if n.op_type == "Gather" and len(n.input) > 1}
        return {name for name in self.model.input_names
                if np.asarray(self.env[name]).dtype.kind in "iub" and name not in ids}

    def is_dynamic(self, name: str) -> bool:
        return bool(name) and name in self.sources

    def mask_source(self, name: str) -> str | None:
        """The mask input a value derives from alone (e.g. ``(1 - mask) * -10000``), else None."""
        deps = self.sources.get(name)
        if deps and len(deps) == 1 and next(iter(deps)) in self.mask_inputs:
            return next(iter(deps))
        return None

    def sole_consumer(self, name: str, op_type: str | tuple):
        users = self.consumers.get(name, [])
        types = (op_type,) if isinstance(op_type, str) else op_type
        if len(users) == 1 and users[0].op_type in types and name not in self.model.output_names:
            return users[0]
        return None

    def static_value(self, name: str) -> np.ndarray:
        return np.asarray(self.env[name])

    # -- graph building ------------------------------------------------------------------------------
    def tensor(self, name: str) -> str:
        """The hwsim tensor for an ONNX value (creating constants and graph inputs on first use)."""
        name = self.alias.get(name, name)
        if name in self.graph.tensors:
            return name
        if name in self.model.input_names:
            self.graph.add_tensor(name, np.shape(self.env[name]), dtype=str(np.asarray(self.env[name]).dtype))
            return name
        if self.is_dynamic(name):
            raise OnnxLoweringError(f"ONNX value {name!r} is used before an hwsim op produced it")
        return self.constant(name)

    def constant(self, name: str, value=None, quant: QuantSpec | None = None) -> str:
        value = self.static_value(name) if value is None else np.asarray(value)
        if name not in self.graph.tensors:
            self.graph.add_tensor(name, value.shape, dtype=str(value.dtype), is_weight=True, quant=quant)
            self.graph.weights[name] = value
        return name

    def output(self, onnx_name: str) -> str:
        value = self.env[onnx_name]
        if onnx_name not in self.graph.tensors:
            self.graph.add_tensor(onnx_name, np.shape(value))
        return onnx_name

    def emit(self, node, kind: str, inputs, out_name: str, **attrs) -> str:
        self.graph.add_op(_node_name(node), kind, [self.tensor(i) for i in inputs], [self.output(out_name)],
                          **attrs)
        return out_name

    def consume(self, *nodes) -> None:
        self.done.update(id(n) for n in nodes)

    def check(self, node, what: str, got, onnx_name: str) -> None:
        ref = np.asarray(self.env[onnx_name], np.float64)
        got = np.asarray(got, np.float64)
        atol = PATTERN_RTOL * np.abs(ref).max()
        if got.shape != ref.shape or not np.allclose(got, ref, rtol=PATTERN_RTOL, atol=atol):
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: looks like {what} but does not compute it "
                                    f"on the traced input; no hwsim op kind for this pattern")

    # -- the walk ------------------------------------------------------------------------------------
    def run(self) -> Graph:
        for node in self.model.nodes:
            if id(node) in self.done or not any(self.is_dynamic(o) for o in node.output):
                continue
            if self.mask_source(node.output[0]) is not None and node.op_type != "Identity":
                continue  # mask arithmetic: consumed by the softmax / pooling patterns that read the mask
            handler = getattr(self, f"_lower_{node.op_type}", None)
            if handler is None:
                raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: op type {node.op_type!r} has no hwsim "
                                        f"lowering (supported: see hwsim.models.onnx_lower)")
            self.consume(node)
            handler(node, self.attrs(node))
        g = self.graph
        g.inputs = tuple(n for n in self.model.input_names if n in g.tensors)
        g.outputs = tuple(self.alias.get(o, o) for o in self.model.output_names)
        g.meta["family"] = "onnx"
        g.meta["onnx_outputs"] = dict(zip(self.model.output_names, g.outputs, strict=True))
        return g.freeze()

    def _alias(self, node, source: str) -> None:
        target = self.alias.get(source, source)
        if source in self.model.input_names:
            self.tensor(source)
        self.alias[node.output[0]] = target

    def _lower_Identity(self, node, attrs):
        self._alias(node, node.input[0])

    def _lower_Concat(self, node, attrs):
        if len(node.input) != 1:
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: Concat of several activations has no hwsim op")
        self._alias(node, node.input[0])

    def _lower_QuantizeLinear(self, node, attrs):
        out = self.output(node.output[0])
        self.graph.set_quant(out, self._activation_spec(node))
        self.graph.add_op(_node_name(node), "quantize", [self.tensor(node.input[0])], [out])

    def _lower_DequantizeLinear(self, node, attrs):
        self._alias(node, node.input[0])  # consumers read the codes; float consumers dequantize

    def _weight(self, name: str) -> str:
        """A MatMul weight [K, N]: float constant, or codes + QuantSpec when a DequantizeLinear gives it."""
        if name in self.graph.tensors:
            return name
        producer = self.model.producer.get(name)
        if producer is None or producer.op_type != "DequantizeLinear":
            return self.constant(name)
        codes = self.static_value(producer.input[0])
        scale = self.static_value(producer.input[1]).astype(np.float64)
        zp = self.static_value(producer.input[2]) if len(producer.input) > 2 and producer.input[2] else None
        axis = self.attrs(producer).get("axis", 1) % codes.ndim
        if codes.ndim != 2 or (scale.size > 1 and (axis != 1 or scale.size != codes.shape[1])):
            raise OnnxLoweringError(f"ONNX weight {name!r}: expected a [K, N] DequantizeLinear per tensor or per "
                                    f"column (axis 1), not shape {codes.shape} with axis {axis}")
        per_column = scale.size > 1
        spec = QuantSpec("uint8" if codes.dtype == np.uint8 else "int8", "channel" if per_column else "tensor",
                         1 if per_column else None, scale=scale.reshape(-1) if per_column else scale.reshape(()),
                         zero_point=None if zp is None or not np.any(zp) else np.asarray(zp, np.int64).reshape(
                             -1 if per_column else ()), codes=codes.view(np.uint8))
        return self.constant(name, self.static_value(name), quant=spec)

    def _quantized_output(self, out: str) -> tuple[str, QuantSpec | None]:
        """A GEMM output re-quantized by its sole consumer (QDQ): the requant folds into the GEMM epilogue."""
        q = self.sole_consumer(out, "QuantizeLinear") if self.fold_requant else None
        if q is None:
            return out, None
        self.consume(q)
        return q.output[0], self._activation_spec(q)

    def _activation_spec(self, q) -> QuantSpec:
        scale = self.static_value(q.input[1])
        if np.size(scale) != 1:
            raise OnnxLoweringError(f"ONNX node {_node_name(q)!r}: per-axis activation quantization is not "
                                    f"supported (scale shape {np.shape(scale)})")
        zp = int(self.static_value(q.input[2]).reshape(-1)[0]) if len(q.input) > 2 and q.input[2] else 0
        fmt = "uint8" if np.asarray(self.env[q.output[0]]).dtype == np.uint8 else "int8"
        return QuantSpec(fmt, "tensor", scale=np.float64(scale.reshape(-1)[0]), zero_point=zp)

    def _lower_MatMul(self, node, attrs):
        a, b = node.input[:2]
        out, spec = self._quantized_output(node.output[0])
        if spec is not None:
            kind = "linear" if not self.is_dynamic(b) else "matmul"
            inputs = [a, self._weight(b)] if kind == "linear" else [a, b]
            self.emit(node, kind, inputs, out)
            self.graph.set_quant(out, spec)
            return
        if not self.is_dynamic(b):
            weight = self._weight(b)
            inputs = [a, weight]
            add = self.sole_consumer(out, "Add")
            if add is not None:
                other = add.input[1] if add.input[0] == out else add.input[0]
                if not self.is_dynamic(other) and self.static_value(other).shape == (self.env[out].shape[-1],):
                    inputs.append(self.constant(other))
                    self.consume(add)
                    out = add.output[0]
            self.emit(node, "linear", inputs, out)
            return
        scale_node = self.sole_consumer(out, ("Div", "Mul"))
        scale = None
        if scale_node is not None and scale_node.input[0] == out and not self.is_dynamic(scale_node.input[1]) \
                and self.static_value(scale_node.input[1]).size == 1:
            c = float(self.static_value(scale_node.input[1]).reshape(-1)[0])
            scale = 1.0 / c if scale_node.op_type == "Div" else c
            self.consume(scale_node)
            out = scale_node.output[0]
        self.emit(node, "matmul", [a, b], out, **({} if scale is None else {"scale": scale}))

    def _lower_Add(self, node, attrs):
        a, b = node.input[:2]
        masks = [self.mask_source(x) for x in (a, b)]
        if any(masks):
            x = a if masks[1] else b
            soft = self.sole_consumer(node.output[0], "Softmax")
            mask = masks[1] or masks[0]
            if soft is None:
                raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: a mask-derived Add that does not feed a "
                                        f"Softmax has no hwsim op")
            from hwsim.float_executor import softmax

            self.check(soft, "a masked softmax", softmax(self.env[x], self.env[mask]), soft.output[0])
            self.consume(soft)
            self.emit(soft, "softmax", [x, mask], soft.output[0])
            return
        self.emit(node, "add", [a, b] if self.is_dynamic(a) else [b, a], node.output[0])  # activation first

    def _lower_Softmax(self, node, attrs):
        if attrs.get("axis", -1) % np.ndim(self.env[node.output[0]]) != np.ndim(self.env[node.output[0]]) - 1:
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: softmax over a non-last axis")
        self.emit(node, "softmax", [node.input[0]], node.output[0])

    def _lower_LayerNormalization(self, node, attrs):
        x = self.env[node.input[0]]
        if attrs.get("axis", -1) % np.ndim(x) != np.ndim(x) - 1:
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: LayerNormalization over several axes")
        beta = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if beta is None:
            beta = self.constant(f"{_node_name(node)}.beta", np.zeros(x.shape[-1], np.float32))
        self.emit(node, "layernorm", [node.input[0], node.input[1], beta], node.output[0],
                  eps=float(attrs.get("epsilon", 1e-5)))

    def _lower_Reshape(self, node, attrs):
        x = self.env[node.input[0]]
        target = [int(v) for v in self.static_value(node.input[1])]
        target = [0 if i < x.ndim and (t == x.shape[i] or t == 0) else t for i, t in enumerate(target)]
        self.emit(node, "reshape", [node.input[0]], node.output[0], shape=tuple(target))

    def _lower_Transpose(self, node, attrs):
        perm = attrs.get("perm") or list(range(np.ndim(self.env[node.input[0]])))[::-1]
        self.emit(node, "transpose", [node.input[0]], node.output[0], perm=tuple(int(p) for p in perm))

    def _lower_Gather(self, node, attrs):
        table, ids = node.input[:2]
        if self.is_dynamic(table) or attrs.get("axis", 0) != 0:
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: only Gather of constant table rows by "
                                    f"token ids (an embedding) has an hwsim op")
        out, positions = node.output[0], None
        while (add := self.sole_consumer(out, "Add")) is not None:
            other = add.input[1] if add.input[0] == out else add.input[0]
            if self.is_dynamic(other):
                break
            rows = self.static_value(other)
            while rows.ndim > 2 and np.array_equal(rows, rows[:1].repeat(rows.shape[0], axis=0)):
                rows = rows[0]  # [B, S, H] equal over the batch -> [S, H]
            if rows.ndim > 2:
                raise OnnxLoweringError(f"ONNX node {_node_name(add)!r}: an embedding addend that varies per batch "
                                        f"row has no hwsim op")
            rows = np.broadcast_to(rows, self.env[out].shape[-2:])  # [S, H]
            positions = rows if positions is None else positions + rows
            self.consume(add)
            out = add.output[0]
        inputs = [ids, table] + ([] if positions is None else
                                 [self.constant(f"{_node_name(node)}.positions", positions.astype(np.float32))])
        from hwsim.float_executor import embed

        self.check(node, "an embedding", embed(_NoAttrs, self.env[ids], self.static_value(table), positions), out)
        self.emit(node, "embedding", inputs, out)

    def _lower_Div(self, node, attrs):
        """``x / c`` opening ``0.5 x (1 + erf(x / c))`` (GELU), else a division by a constant scalar (``mul`` by
        its float32 reciprocal). Mean pooling's division is taken by :meth:`_lower_Mul`."""
        x = node.input[0]
        erf = self.sole_consumer(node.output[0], "Erf")
        if erf is not None:
            return self._gelu(node, x, erf)
        c = self.static_value(node.input[1]) if not self.is_dynamic(node.input[1]) else None
        if c is None or c.size != 1:
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: Div by an activation outside the mean "
                                    f"pooling pattern has no hwsim op")
        inverse = self.constant(f"{_node_name(node)}.reciprocal", np.float32(1.0) / c.astype(np.float32))
        self.emit(node, "mul", [x, inverse], node.output[0])

    def _gelu(self, div, x, erf):
        from hwsim.float_executor import gelu

        nodes, out = [erf], erf.output[0]
        while (nxt := self.sole_consumer(out, ("Add", "Mul"))) is not None:
            nodes.append(nxt)
            out = nxt.output[0]
            if out in self.env and np.allclose(self.env[out], gelu(self.env[x]), rtol=PATTERN_RTOL,
                                               atol=PATTERN_RTOL * np.abs(self.env[out]).max()):
                break
        self.check(div, "GELU x·0.5·(1 + erf(x/√2))", gelu(self.env[x]), out)
        self.consume(*nodes)
        self.emit(div, "gelu", [x], out)

    def _lower_Mul(self, node, attrs):
        """``x * mask`` opening mean pooling (``ReduceSum`` over the sequence ``/`` the clipped mask count)."""
        a, b = node.input[:2]
        masks = [self.mask_source(v) for v in (a, b)]
        if not any(masks):
            self.emit(node, "mul", [a, b] if self.is_dynamic(a) else [b, a], node.output[0])
            return
        x, mask = (a, masks[1]) if masks[1] else (b, masks[0])
        total = self.sole_consumer(node.output[0], "ReduceSum")
        div = self.sole_consumer(total.output[0], "Div") if total is not None else None
        if div is None:
            raise OnnxLoweringError(f"ONNX node {_node_name(node)!r}: a mask multiply that is not mean pooling "
                                    f"(ReduceSum then Div) has no hwsim op")
        from hwsim.float_executor import FloatBackend

        self.check(div, "mean pooling", FloatBackend().mean_pool(None, self.env[x], self.env[mask]), div.output[0])
        self.consume(total, div)
        self.emit(node, "mean_pool", [x, mask], div.output[0])


class _NoAttrs:
    """Stands in for an op in :func:`hwsim.float_executor.embed` (no ``table_transposed``)."""

    attrs: dict = {}
