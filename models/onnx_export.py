"""Export a quantized graph's linears as an ONNX model onnxruntime runs, and check it against hwsim.

:func:`export_onnx_linears` writes one ONNX model (opset 21) holding every quantized linear of the graph side
by side. For linear ``L`` with input ``x`` [M, K] (float32, graph input ``L.x``):

1. **Activation quantization.** Static per-tensor specs: ``QuantizeLinear(x, s_x, zp)`` to uint8 (a signed
   spec is shifted by 128: ``zp = zp_x + 128``, the same codes plus 128, saturation included). Dynamic per-token
   specs (LLMs): ``s = ReduceMax(|x|) / limit`` per row, then ``Round`` (half to even), ``Clip``, ``+128``,
   ``Cast`` — hwsim's :func:`hwsim.qspec.token_scale` rule in float32. Output ``L.xq`` (uint8 codes).
2. **Integer product.** ``MatMulInteger`` (opset 10) on uint8 activations and uint8 weight codes (signed codes
   + 128) with zero points: per tensor/channel a 1-D ``b_zero_point`` [N]; per group along K the batched form
   ``[G, M, g] x [G, g, N]`` with ``b_zero_point`` [G, 1, N]. Output ``L.acc`` (int32): hwsim's exact
   accumulators (:func:`linear_accumulators`, the calls :func:`hwsim.qlinear.quantized_linear` makes). uint8 x
   uint8 is used because onnxruntime's u8s8 kernel sums products in saturating int16 pairs on CPUs without VNNI
   (see :mod:`hwsim.models.onnx_check`).
3. **Float epilogue.** ``L.y = Σ_g float(acc_g) s_w[g] · s_x + b`` (float32; hwsim's float epilogue in float64).
4. **QDQ reference.** ``L.y_qdq = MatMul(DequantizeLinear(xq), DequantizeLinear(W)) + b`` with the weight codes
   in their own type (ONNX ``INT4``/``UINT4`` for 4-bit, opset 21; int8/uint8 otherwise): per channel with
   ``axis=1``, per group with opset 21 *blocked quantization* (``axis=0, block_size=g``, scale [K/g, N]).

Linears whose weights are not integer codes of at most 8 bits (FP4, NF4, dINT, MX, GGUF offsets) or whose input
is not an integer spec of at most 8 bits (per tensor or per token) are refused with one line naming the layer.
:func:`check_onnx_export` runs the model in onnxruntime (graph optimisations off) on the activations hwsim's
integer executor produced for a test input and compares codes, accumulators (bit for bit) and outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError
from hwsim.qspec import QTensor, QuantSpec, quantize_activation

OPSET = 21


class OnnxExportError(HwsimError, ValueError):
    """A linear cannot be written as integer ONNX ops (one line naming it)."""


def _int_format(fmt_name: str):
    from hwsim.formats import get_format

    fmt = get_format(fmt_name)
    return fmt if fmt.kind == "int" and fmt.bits <= 8 else None


def check_linear(graph, op) -> tuple[QuantSpec, QuantSpec]:
    """``(activation spec, weight spec)`` of a linear the exporter can write, else :class:`OnnxExportError`."""
    w = graph.tensors[op.inputs[1]].quant
    x = graph.tensors[op.inputs[0]].quant
    where = f"linear {op.name!r}"
    if w is None or w.codes is None:
        raise OnnxExportError(f"{where}: weight is not quantized; only quantized linears are exported")
    if w.granularity == "block" or _int_format(w.element_format) is None or w.offset is not None:
        raise OnnxExportError(f"{where}: weight {w.describe()} is not integer codes of at most 8 bits with integer "
                              "zero points; MatMulInteger cannot compute it")
    if w.granularity == "group" and w.axis != 0:
        raise OnnxExportError(f"{where}: weight groups must run along K (axis 0), not axis {w.axis}")
    if x is None or _int_format(x.format) is None:
        raise OnnxExportError(f"{where}: input {op.inputs[0]!r} must be quantized to an integer format of at most "
                              f"8 bits, not {x.describe() if x is not None else 'float'}")
    if not x.is_dynamic and (np.ndim(x.scale) or np.ndim(x.zero_point)):
        raise OnnxExportError(f"{where}: input {op.inputs[0]!r} must have a per-tensor or per-token scale, "
                              f"not {x.describe()}")
    return x, w


def exportable_linears(graph) -> list:
    """Linear ops of ``graph`` with quantized weights (each must pass :func:`check_linear`)."""
    ops = [op for op in graph.ops if op.kind == "linear" and graph.tensors[op.inputs[1]].quant is not None
           and graph.tensors[op.inputs[1]].quant.codes is not None]
    if not ops:
        raise OnnxExportError(f"graph {graph.name!r} has no quantized linear to export")
    for op in ops:
        check_linear(graph, op)
    return ops


# -- hwsim side -------------------------------------------------------------------------------------
def _weight_ints(w: QuantSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """``(integer values [K, N], zero points [G, N], group size)`` of a weight spec (G = 1 unless grouped)."""
    from hwsim.formats import get_format

    k, n = w.codes.shape
    ints = get_format(w.element_format).code_to_int(np.asarray(w.codes)).astype(np.int64)
    g = w.group_size if w.granularity == "group" else k
    zp = np.zeros((k // g, n), np.int64) if w.zero_point is None else \
        np.broadcast_to(np.asarray(w.zero_point, np.int64).reshape(-1, n) if np.ndim(w.zero_point) else
                        np.asarray(w.zero_point, np.int64), (k // g, n))
    return ints, np.array(zp), g


def linear_accumulators(x: QTensor, w: QuantSpec) -> np.ndarray:
    """hwsim's exact int64 accumulators of ``x [M, K] @ W``: ``[M, N]`` (tensor/channel) or ``[G, M, N]``
    (groups) — :func:`hwsim.qlinear.linear_accumulators`, integer formats only."""
    from hwsim.qlinear import linear_accumulators as accumulators

    acc, lsb = accumulators(x, w)
    if lsb != 0:
        raise OnnxExportError(f"accumulator LSB exponent must be 0 for integer formats, not {lsb}")
    return np.asarray(acc, np.int64)


# -- ONNX model -------------------------------------------------------------------------------------
class _Builder:
    def __init__(self):
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []

    def init(self, name, array, onnx_type=None):
        from onnx import helper, numpy_helper

        if onnx_type is None:
            self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        else:  # 4-bit tensors: values listed, packed by onnx
            self.inits.append(helper.make_tensor(name, onnx_type, np.shape(array),
                                                 np.asarray(array).reshape(-1).tolist()))
        return name

    def node(self, op_type, inputs, output, **attrs):
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output


def _quantize_input(b: _Builder, name: str, x: QuantSpec, fmt) -> str:
    shift = 128 if fmt.signed else 0
    if not x.is_dynamic:
        return b.node("QuantizeLinear", [name, b.init(name + ".s_x", np.float32(x.scale)),
                                         b.init(name + ".zp_x", np.uint8(int(x.zero_point or 0) + shift))],
                      name + "q")
    limit = b.init(name + ".limit", np.float32(fmt.hi))
    amax = b.node("ReduceMax", [b.node("Abs", [name], name + ".abs"), b.init(name + ".axes", np.array([-1]))],
                  name + ".amax", keepdims=1)
    from hwsim.qspec import MIN_SCALE

    scale = b.node("Div", [b.node("Max", [amax, b.init(name + ".min", np.float32(MIN_SCALE))], name + ".amax_"),
                           limit], name + ".scale")
    r = b.node("Round", [b.node("Div", [name, scale], name + ".v")], name + ".r")
    c = b.node("Clip", [r, b.init(name + ".lo", np.float32(fmt.lo)), b.init(name + ".hi", np.float32(fmt.hi))],
               name + ".c")
    from onnx import TensorProto

    return b.node("Cast", [b.node("Add", [c, b.init(name + ".shift", np.float32(shift))], name + ".u")],
                  name + "q", to=TensorProto.UINT8)


def _add_linear(b: _Builder, graph, op) -> None:
    from onnx import TensorProto, helper

    x, w = check_linear(graph, op)
    xfmt = _int_format(x.format)
    k, n = w.codes.shape
    p = op.name
    b.inputs.append(helper.make_tensor_value_info(p + ".x", TensorProto.FLOAT, ["rows", k]))
    xq = _quantize_input(b, p + ".x", x, xfmt)
    ints, zp, g = _weight_ints(w)
    x_zp = p + ".x.zp_x" if not x.is_dynamic else b.init(p + ".zp_dyn", np.uint8(128 if xfmt.signed else 0))
    wfmt = _int_format(w.element_format)
    shift = 128 if wfmt.signed else 0
    w_u8 = (ints + shift).astype(np.uint8)
    groups = k // g
    scale = np.broadcast_to(np.asarray(w.scale, np.float64).reshape(-1, n) if np.ndim(w.scale) else
                            np.asarray(w.scale, np.float64), (groups, n)).astype(np.float32)
    if w.granularity == "group":
        xg = b.node("Transpose", [b.node("Reshape", [xq, b.init(p + ".gshape", np.array([-1, groups, g]))],
                                         p + ".xg")], p + ".xgt", perm=[1, 0, 2])
        acc = b.node("MatMulInteger", [xg, b.init(p + ".w_u8", w_u8.reshape(groups, g, n)),
                                       x_zp,
                                       b.init(p + ".zp_w", (zp + shift).astype(np.uint8).reshape(groups, 1, n))],
                     p + ".acc")
        scaled = b.node("Mul", [b.node("Cast", [acc], p + ".accf", to=TensorProto.FLOAT),
                                b.init(p + ".s_w", scale.reshape(groups, 1, n))], p + ".accs")
        y = b.node("ReduceSum", [scaled, b.init(p + ".axis0", np.array([0]))], p + ".sum", keepdims=0)
    else:
        acc = b.node("MatMulInteger", [xq, b.init(p + ".w_u8", w_u8),
                                       x_zp,
                                       b.init(p + ".zp_w", (zp.reshape(n) + shift).astype(np.uint8))], p + ".acc")
        y = b.node("Mul", [b.node("Cast", [acc], p + ".accf", to=TensorProto.FLOAT),
                           b.init(p + ".s_w", scale.reshape(n))], p + ".sum")
    x_scale = p + ".x.s_x" if not x.is_dynamic else p + ".x.scale"
    y = b.node("Mul", [y, x_scale], p + ".ys")
    bias = graph.weights.get(op.inputs[2]) if len(op.inputs) > 2 else None
    if bias is not None:
        y = b.node("Add", [y, b.init(p + ".b", np.asarray(bias, np.float32))], p + ".y")
    else:
        y = b.node("Identity", [y], p + ".y")
    _add_qdq(b, p, xq, x, w, ints, zp, g, scale, bias)
    for name, t, shape in ((xq, TensorProto.UINT8, ["rows", k]), (p + ".acc", TensorProto.INT32, None),
                           (y, TensorProto.FLOAT, ["rows", n]), (p + ".y_qdq", TensorProto.FLOAT, ["rows", n])):
        shape = shape if shape is not None else (["rows", n] if w.granularity != "group" else [groups, "rows", n])
        b.outputs.append(helper.make_tensor_value_info(name, t, shape))


def _add_qdq(b: _Builder, p, xq, x: QuantSpec, w: QuantSpec, ints, zp, g, scale, bias) -> None:
    """``y_qdq = MatMul(DQ(xq), DQ(W)) (+ b)``: the weights in their own integer type, per-axis or blocked."""
    from onnx import TensorProto

    k, n = ints.shape
    wfmt = _int_format(w.element_format)
    onnx_type = {(4, True): TensorProto.INT4, (4, False): TensorProto.UINT4, (8, True): TensorProto.INT8,
                 (8, False): TensorProto.UINT8}.get((wfmt.bits, bool(wfmt.signed)))
    if onnx_type is None:  # other widths (2, 3 bits) fit in int8/uint8 containers
        onnx_type = TensorProto.INT8 if wfmt.signed else TensorProto.UINT8
    np_type = np.int8 if onnx_type in (TensorProto.INT4, TensorProto.INT8) else np.uint8
    four = onnx_type in (TensorProto.INT4, TensorProto.UINT4)
    wq = b.init(p + ".wq", ints.astype(np_type), onnx_type if four else None)
    if w.granularity == "group":
        zpt = b.init(p + ".wq_zp", zp.astype(np_type), onnx_type if four else None)
        wd = b.node("DequantizeLinear", [wq, b.init(p + ".wq_s", scale), zpt], p + ".wd", axis=0, block_size=g)
    else:
        zpt = b.init(p + ".wq_zp", zp.reshape(n).astype(np_type), onnx_type if four else None)
        wd = b.node("DequantizeLinear", [wq, b.init(p + ".wq_s", scale.reshape(n)), zpt], p + ".wd", axis=1)
    if x.is_dynamic:
        xd = b.node("Mul", [b.node("Sub", [b.node("Cast", [xq], p + ".xqf", to=TensorProto.FLOAT),
                                           p + ".x.shift"], p + ".xc"), p + ".x.scale"], p + ".xd")
    else:
        xd = b.node("DequantizeLinear", [xq, p + ".x.s_x", p + ".x.zp_x"], p + ".xd")
    y = b.node("MatMul", [xd, wd], p + ".mm")
    if bias is not None:
        b.node("Add", [y, p + ".b"], p + ".y_qdq")
    else:
        b.node("Identity", [y], p + ".y_qdq")


def export_onnx_linears(graph, path) -> dict:
    """Write every quantized linear of ``graph`` into one ONNX model at ``path`` (see the module docstring).

    Returns ``{"path", "linears", "opset", "nodes"}``; refuses (one line) a linear it cannot write.
    """
    import onnx
    from onnx import helper

    b = _Builder()
    ops = exportable_linears(graph)
    for op in ops:
        _add_linear(b, graph, op)
    model = helper.make_model(helper.make_graph(b.nodes, f"{graph.name}-linears", b.inputs, b.outputs, b.inits),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hwsim")
    onnx.checker.check_model(model, full_check=True)
    from hwsim.atomic_io import write_bytes_atomic

    write_bytes_atomic(path, model.SerializeToString())
    return {"path": str(path), "linears": len(ops), "opset": OPSET, "nodes": len(b.nodes)}


# -- the check --------------------------------------------------------------------------------------
def linear_inputs(graph, feeds: dict) -> dict:
    """``{linear op name: QTensor [M, K]}``: what each exported linear's input is in hwsim's integer
    executor on ``feeds`` (float inputs quantized with the tensor's spec, leading axes flattened)."""
    from hwsim.int_executor import IntegerExecutor

    env = IntegerExecutor(graph).run(feeds, keep=True)
    out = {}
    for op in exportable_linears(graph):
        v = env[op.inputs[0]]
        q = v if isinstance(v, QTensor) else quantize_activation(v, graph.tensors[op.inputs[0]].quant)
        k = q.codes.shape[-1]
        scale = np.asarray(q.scale, np.float64)
        out[op.name] = QTensor(q.codes.reshape(-1, k), q.fmt, scale.reshape(-1, 1) if scale.ndim else scale,
                               q.zero_point)
    return out


def ort_session(path):
    """onnxruntime CPU session on ``path`` with graph optimisations off and one thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def check_onnx_export(graph, path, feeds: dict) -> dict:
    """Run the exported model in onnxruntime on hwsim's linear inputs for ``feeds`` and compare.

    Per linear: ``codes_equal`` (onnxruntime's QuantizeLinear of the dequantized activation vs hwsim's codes),
    ``accumulators_equal`` (MatMulInteger int32 vs :func:`linear_accumulators`), ``y_rel_error`` (max |y_ort -
    y_hwsim| / max |y_hwsim|, hwsim's float epilogue :func:`hwsim.qlinear.quantized_linear` with no output
    spec) and the same for ``y_qdq``.
    """
    import onnxruntime as ort

    from hwsim.formats import get_format
    from hwsim.qlinear import quantized_linear

    inputs = linear_inputs(graph, feeds)
    sess = ort_session(path)
    result = dict(zip([o.name for o in sess.get_outputs()],
                      sess.run(None, {f"{name}.x": q.real().astype(np.float32) for name, q in inputs.items()}),
                      strict=True))
    rows = []
    for name, q in inputs.items():
        op = graph.op(name)
        w = graph.tensors[op.inputs[1]].quant
        bias = graph.weights.get(op.inputs[2]) if len(op.inputs) > 2 else None
        acc = linear_accumulators(q, w)
        y = quantized_linear(q, w, bias, None)
        shift = 128 if get_format(q.fmt).signed else 0
        ints = get_format(q.fmt).code_to_int(q.codes).astype(np.int64)
        denom = max(float(np.abs(y).max()), 1e-30)
        rows.append({"linear": name, "rows": int(q.codes.shape[0]), "weight": w.describe(),
                     "input": graph.tensors[op.inputs[0]].quant.describe(),
                     "codes_equal": bool(np.array_equal(result[f"{name}.x" + "q"].astype(np.int64), ints + shift)),
                     "accumulators_equal": bool(np.array_equal(result[f"{name}.acc"].astype(np.int64), acc)),
                     "max_abs_acc": int(np.abs(acc).max()),
                     "y_rel_error": float(np.abs(result[f"{name}.y"] - y).max() / denom),
                     "y_qdq_rel_error": float(np.abs(result[f"{name}.y_qdq"] - y).max() / denom)})
    return {"onnxruntime": ort.__version__, "opset": OPSET, "linears": rows,
            "accumulators_equal": all(r["accumulators_equal"] for r in rows),
            "codes_equal": all(r["codes_equal"] for r in rows),
            "max_y_rel_error": max(r["y_rel_error"] for r in rows),
            "max_y_qdq_rel_error": max(r["y_qdq_rel_error"] for r in rows)}


def check_file(path) -> Path:
    """``path`` if it names an ONNX output file (``.onnx``), else :class:`OnnxExportError`."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise OnnxExportError(f"--out for ONNX export must end in .onnx, not {str(path)!r}")
    return path
