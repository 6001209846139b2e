"""Build one-op int8 ``.tflite`` flatbuffers in memory and run them on LiteRT's *reference* kernels.

No TensorFlow and no files: the model is packed with the flatbuffer object API generated from the
TFLite schema that the ``ai-edge-litert`` wheel ships (``ai_edge_litert.schema_py_generated``), then
handed to ``ai_edge_litert.interpreter.Interpreter(model_content=...,
experimental_op_resolver_type=OpResolverType.BUILTIN_REF)``, which registers the reference
(non-optimized, non-delegated) builtin kernels.

Two ops are built, both int8 in / int8 filter / int32 bias / int8 out:

* ``CONV_2D`` with a 1x1 filter ``[N, 1, 1, K]`` over an input ``[1, 1, M, K]`` — a plain ``M x K @ K x N``
  matmul run by ``reference_integer_ops::ConvPerChannel`` (fixed-point ``MultiplyByQuantizedMultiplier``);
  per-tensor filter scales are broadcast to every channel by ``PopulateConvolutionQuantizationParams``.
* ``FULLY_CONNECTED`` with weights ``[N, K]`` over an input ``[M, K]``.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

__all__ = ["run_conv1x1", "run_fully_connected", "reference_interpreter"]


def _quant(scales, zero_points, axis: int = 0) -> schema.QuantizationParametersT:
    q = schema.QuantizationParametersT()
    q.scale = [float(np.float32(s)) for s in np.atleast_1d(scales)]
    q.zeroPoint = [int(z) for z in np.atleast_1d(zero_points)]
    q.quantizedDimension = axis
    return q


def _tensor(name: str, shape, tensor_type: int, buffer: int, quant) -> schema.TensorT:
    t = schema.TensorT()
    t.name = name
    t.shape = [int(d) for d in shape]
    t.type = tensor_type
    t.buffer = buffer
    t.quantization = quant
    return t


def _buffer(data: np.ndarray | None) -> schema.BufferT:
    b = schema.BufferT()
    if data is not None:
        b.data = np.ascontiguousarray(data).view(np.uint8).ravel()
    return b


def _model(op: int, options_type: int, options, tensors, buffers) -> bytes:
    code = schema.OperatorCodeT()
    code.builtinCode = op
    code.deprecatedBuiltinCode = op
    code.version = 1
    operator = schema.OperatorT()
    operator.opcodeIndex = 0
    operator.inputs = [0, 1, 2]
    operator.outputs = [3]
    operator.builtinOptionsType = options_type
    operator.builtinOptions = options
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.inputs = [0]
    graph.outputs = [3]
    graph.operators = [operator]
    graph.name = "main"
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [graph]
    model.description = "hwsim external requant check"
    model.buffers = buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def reference_interpreter(model: bytes) -> Interpreter:
    """An interpreter on LiteRT's reference kernels (no XNNPACK, no optimized paths)."""
    interpreter = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def _invoke(model: bytes, x: np.ndarray, out_shape) -> np.ndarray:
    interpreter = reference_interpreter(model)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return out.reshape(out_shape).astype(np.int64)


def _operands(x, w, bias, input_scale, filter_scales, output_scale):
    x = np.asarray(x, dtype=np.int8)
    w = np.asarray(w, dtype=np.int8)  # N x K (output channels first, as TFLite stores them)
    bias = np.asarray(bias, dtype=np.int32)
    n = w.shape[0]
    filter_scales = np.atleast_1d(np.asarray(filter_scales, dtype=np.float32))
    if filter_scales.size not in (1, n):
        raise ValueError(f"filter_scales must have 1 or {n} entries, not {filter_scales.size}")
    # Bias scale = input scale * filter scale (float32 product), as converters write it.
    bias_scales = np.float32(input_scale) * filter_scales
    return x, w, bias, n, filter_scales, bias_scales, np.float32(output_scale)


def run_conv1x1(x, w, bias, *, input_scale, input_zero_point, filter_scales, output_scale,
                output_zero_point) -> np.ndarray:
    """Run ``x (M x K int8) @ w.T`` as a 1x1 int8 CONV_2D; returns the M x N int8 outputs as int64."""
    x, w, bias, n, filter_scales, bias_scales, output_scale = _operands(
        x, w, bias, input_scale, filter_scales, output_scale)
    m, k = x.shape
    tensors = [
        _tensor("input", [1, 1, m, k], schema.TensorType.INT8, 0, _quant(input_scale, input_zero_point)),
        _tensor("filter", [n, 1, 1, k], schema.TensorType.INT8, 1, _quant(filter_scales, [0] * filter_scales.size)),
        _tensor("bias", [n], schema.TensorType.INT32, 2, _quant(bias_scales, [0] * bias_scales.size)),
        _tensor("output", [1, 1, m, n], schema.TensorType.INT8, 0, _quant(output_scale, output_zero_point)),
    ]
    options = schema.Conv2DOptionsT()
    options.padding = schema.Padding.VALID
    options.strideW = options.strideH = 1
    options.dilationWFactor = options.dilationHFactor = 1
    options.fusedActivationFunction = schema.ActivationFunctionType.NONE
    buffers = [_buffer(None), _buffer(w.reshape(n, 1, 1, k)), _buffer(bias)]
    model = _model(schema.BuiltinOperator.CONV_2D, schema.BuiltinOptions.Conv2DOptions, options, tensors, buffers)
    return _invoke(model, x.reshape(1, 1, m, k), (m, n))


def run_fully_connected(x, w, bias, *, input_scale, input_zero_point, filter_scales, output_scale,
                        output_zero_point) -> np.ndarray:
    """Run ``x (M x K int8) @ w.T`` as an int8 FULLY_CONNECTED; returns M x N int8 outputs as int64."""
    x, w, bias, n, filter_scales, bias_scales, output_scale = _operands(
        x, w, bias, input_scale, filter_scales, output_scale)
    m, k = x.shape
    tensors = [
        _tensor("input", [m, k], schema.TensorType.INT8, 0, _quant(input_scale, input_zero_point)),
        _tensor("weights", [n, k], schema.TensorType.INT8, 1, _quant(filter_scales, [0] * filter_scales.size)),
        _tensor("bias", [n], schema.TensorType.INT32, 2, _quant(bias_scales, [0] * bias_scales.size)),
        _tensor("output", [m, n], schema.TensorType.INT8, 0, _quant(output_scale, output_zero_point)),
    ]
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction = schema.ActivationFunctionType.NONE
    buffers = [_buffer(None), _buffer(w), _buffer(bias)]
    model = _model(schema.BuiltinOperator.FULLY_CONNECTED, schema.BuiltinOptions.FullyConnectedOptions, options,
                   tensors, buffers)
    return _invoke(model, x, (m, n))
