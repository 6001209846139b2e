"""The core quantized linear layer: ``y = x @ W + b`` on the bit-exact datapath.

Every executor (the integer graph executor, the datapath demo, the ONNX integer check) and the RTL array
tile's scoreboard call :func:`quantized_linear`. Datapath, in order:

1. **Exact accumulators.** Tensor/channel weights: one exact accumulator per output (:func:`hwsim.gemm.gemm_ex`,
   values ``acc · 2^lsb`` of the exact fixed-point sum). Group/MX weights: one exact accumulator per group of K
   (:func:`hwsim.gemm.gemm_fixed_grouped`). Zero points of both operands are subtracted inside.
2. **Bias** folded into the accumulator, ``acc += rint(b / s_acc)`` with ``s_acc = s_x s_w 2^lsb`` (integer
   path), or added to the real result (float epilogue).
3. **Output.**

   * *Integer requant* when both operand formats are integer-valued (int, dINT), the weights are per tensor
     or per channel, the activation scale is per tensor and the output spec is an integer format:
     ``requantize(acc, M, shift, zp_out)`` with ``M 2^shift = s_acc / s_out`` (32-bit multiplier, gemmlowp
     rounding, saturating) — what the requant unit computes.
   * *Float epilogue* otherwise (float formats, per-token activation scales, group/MX weights):
     ``y = Σ_g acc_g (s_w[g] 2^lsb)`` summed over groups in ascending order in float64, plus
     ``offset[g] Σ_{k∈g} F_x 2^lsb_x`` for offset weights (GGUF ``Q4_1``) (:mod:`hwsim.group_sum`: the rule
     and its exact fast evaluation), times ``s_x``, plus ``b``;
     encoded to the output spec by :func:`hwsim.qspec.quantize_to_spec` or returned as float64 when the
     output is not quantized.

Pure numpy.
"""

from __future__ import annotations

import numpy as np

from hwsim.formats import get_format
from hwsim.gemm import gemm_ex, gemm_fixed_grouped
from hwsim.group_sum import group_sum
from hwsim.qspec import QTensor, QuantSpec, quantize_to_spec
from hwsim.requant import quantize_multiplier, requantize

#: Integer-valued element kinds: their exact accumulators are integers the requant unit can take.
INTEGER_KINDS = ("int", "dint")


def is_integer_format(fmt: str) -> bool:
    """True for formats whose codes are integers (times a power of two) the requant unit can take."""
    return get_format(fmt).kind in INTEGER_KINDS


def _zero_point(zp) -> np.ndarray | int:
    return 0 if zp is None else np.asarray(zp, np.int64)


def _to_codes(ints: np.ndarray, fmt: str) -> np.ndarray:
    spec = get_format(fmt)
    return spec.int_to_code(ints) if spec.kind == "int" else ints


def requant_accumulator(acc: np.ndarray, acc_scale, out: QuantSpec) -> QTensor:
    """Integer requant of exact accumulators at real scale ``acc_scale`` (scalar or per column) to ``out``."""
    m, sh = quantize_multiplier(np.asarray(acc_scale / np.asarray(out.scale, np.float64), np.float64))
    zp = _zero_point(out.zero_point)
    ints = requantize(np.asarray(acc, np.int64), m, sh, zp, out_format=out.format, rounding="gemmlowp")
    return QTensor(_to_codes(ints, out.format), out.format, np.asarray(out.scale, np.float64), zp)


def encode_output(y: np.ndarray, out: QuantSpec | None):
    """Real result ``y`` to the output spec (static scale) — or ``y`` itself when ``out`` is None."""
    if out is None:
        return y
    zp = _zero_point(out.zero_point)
    return QTensor(quantize_to_spec(y, out.format, out.scale, zp), out.format,
                   np.asarray(out.scale, np.float64), zp)


def requantize_tensor(x: QTensor, out: QuantSpec) -> QTensor:
    """Move an integer activation to another static spec with the requant unit (per-channel scales OK)."""
    fixed, lsb = x.fixed()
    return requant_accumulator(fixed, np.asarray(x.scale, np.float64) * 2.0**lsb, out)


def _integer_path(x: QTensor, w: QuantSpec, out: QuantSpec | None) -> bool:
    return (out is not None and is_integer_format(out.format) and not w.is_grouped
            and np.ndim(x.scale) == 0 and is_integer_format(x.fmt) and is_integer_format(w.element_format))


def quantized_linear(x: QTensor, w: QuantSpec, bias=None, out: QuantSpec | None = None, *,
                     product_scale: float = 1.0):
    """``x @ W + bias`` on the bit-exact datapath (see the module docstring for the rule).

    Parameters
    ----------
    x : QTensor
        Activation codes ``[M, K]`` with a per-tensor scale (scalar) or per-row scale ``[M, 1]``
        (dynamic per-token), integer zero point.
    w : QuantSpec
        Weight spec with ``codes [K, N]`` and scales (tensor, channel, group or MX block).
    bias : array_like [N], optional
        Real bias.
    out : QuantSpec, optional
        Static output spec; ``None`` returns the real result (float64).
    product_scale : float
        Real factor applied to the product (e.g. attention's ``1/sqrt(d)``), folded into the epilogue.

    Returns
    -------
    QTensor (codes ``[M, N]``) when ``out`` is given, else float64 ``[M, N]``.
    """
    codes = np.asarray(x.codes)
    if codes.ndim != 2 or w.codes is None or w.codes.ndim != 2 or codes.shape[1] != w.codes.shape[0]:
        raise ValueError(f"quantized_linear needs x [M, K] and weight codes [K, N], not "
                         f"{codes.shape!r} and {None if w.codes is None else w.codes.shape!r}")
    if np.ndim(x.scale) > 0 and np.shape(x.scale)[-1] != 1:
        raise ValueError(f"activation scale must be per tensor or per row [M, 1], not shape {np.shape(x.scale)!r}")
    if w.is_grouped:
        y = _scaled(group_sum(x, w), np.asarray(x.scale, np.float64) * product_scale)
        return encode_output(y if bias is None else y + np.asarray(bias, np.float64), out)
    result = _exact_product(x, w)
    lsb = result.lsb_exponent
    real_scale = np.asarray(x.scale, np.float64) * np.asarray(w.scale, np.float64) * product_scale
    if _integer_path(x, w, out):
        acc = _integer_accumulator(result.values, lsb)
        acc_scale = real_scale * 2.0**lsb
        if bias is not None:
            acc = acc + np.rint(np.asarray(bias, np.float64) / acc_scale).astype(np.int64)
        return requant_accumulator(acc, acc_scale, out)
    y = np.asarray(result.values, np.float64) * real_scale
    return encode_output(y if bias is None else y + np.asarray(bias, np.float64), out)


def _scaled(y: np.ndarray, scale) -> np.ndarray:
    """``y * scale`` for a float64 array ``y`` the caller owns: in place when ``scale`` broadcasts into it."""
    if np.ndim(scale) <= y.ndim and np.broadcast_shapes(y.shape, np.shape(scale)) == y.shape:
        return np.multiply(y, scale, out=y)
    return y * scale


def _exact_product(x: QTensor, w: QuantSpec):
    """Exact values ``Σ F_a F_b 2^lsb`` of a tensor/channel-weight linear (gemm's table fast path, the
    layer's weight values kept in ``w.cache``; exact limbs beyond the float64 bound)."""
    return gemm_ex(np.asarray(x.codes), x.fmt, w.codes, w.element_format, a_zero_point=x.zero_point,
                   b_zero_point=_zero_point(w.zero_point), b_cache=w.cache)


def linear_accumulators(x: QTensor, w: QuantSpec) -> tuple[np.ndarray, int]:
    """The exact accumulators of :func:`quantized_linear` before its epilogue, and their LSB exponent.

    ``[M, N]`` for tensor/channel weights, ``[G, M, N]`` (one per group of K) for group/MX weights: what
    external checks (onnxruntime's ``MatMulInteger``, the RTL tile) compare with.
    """
    if w.is_grouped:
        return gemm_fixed_grouped(x.codes, x.fmt, w.codes, w.element_format, w.group_size,
                                  a_zero_point=x.zero_point, b_zero_point=_zero_point(w.zero_point))
    result = _exact_product(x, w)
    return result.values, result.lsb_exponent


def _integer_accumulator(values: np.ndarray, lsb: int) -> np.ndarray:
    """Exact accumulator integers from exact values ``acc * 2^lsb`` (int64 already when ``lsb == 0``)."""
    if values.dtype == np.int64:
        return values
    if values.dtype == object:
        raise ValueError("accumulators beyond 62 bits cannot be requantized by the int64 requant unit")
    return np.ldexp(values, -lsb).astype(np.int64)


def quantized_matmul(a: QTensor, b: QTensor, out: QuantSpec | None = None, *, product_scale: float = 1.0):
    """Batched activation × activation product ``a @ b`` (attention scores / context) on the datapath.

    Same rule as :func:`quantized_linear` with ``b`` as a per-tensor "weight" and no bias: exact accumulators
    per leading index (one batched exact GEMM), then the integer requant (both operands integer-valued, the
    output an integer spec, ``a`` per tensor) or the float epilogue. ``a`` may carry a per-row scale
    ``[..., M, 1]``; ``b`` must be per tensor.
    """
    if np.ndim(b.scale) or np.ndim(b.zero_point) or np.ndim(a.zero_point):
        raise ValueError("quantized_matmul needs a per-tensor scale and zero point on b (and a zero point on a)")
    fa_fmt, fb_fmt = get_format(a.fmt), get_format(b.fmt)
    acc = _batched_accumulators(a, b)
    acc_scale = np.asarray(a.scale, np.float64) * float(b.scale) * 2.0 ** (fa_fmt.lsb_exponent + fb_fmt.lsb_exponent) \
        * product_scale
    integer = (out is not None and is_integer_format(out.format) and np.ndim(a.scale) == 0
               and is_integer_format(a.fmt) and is_integer_format(b.fmt) and acc.dtype != object)
    if integer:
        return requant_accumulator(acc.astype(np.int64), acc_scale, out)
    return encode_output(_scaled(np.array(acc, np.float64), acc_scale), out)


def _batched_accumulators(a: QTensor, b: QTensor) -> np.ndarray:
    """Exact accumulators ``Σ (F_a − zp_a)(F_b − zp_b)`` of ``a @ b`` (batched): for integer formats whose
    bound ``|F_a − zp_a| |F_b − zp_b| K`` fits float32/float64, exact integers in that float from one table
    lookup per operand and one BLAS call; otherwise int64 (an object array beyond 62 bits)."""
    from hwsim.gemm import _exact_float_dtype, _fixed_operand, exact_fixed_matmul, operand_bound, value_operand

    fa, fb = get_format(a.fmt), get_format(b.fmt)
    k = np.shape(a.codes)[-1]
    integers = all(f.kind in INTEGER_KINDS and f.lsb_exponent == 0 for f in (fa, fb))  # value == F
    if integers and k:
        bound = operand_bound(fa, np.asarray(a.zero_point)) * operand_bound(fb, np.asarray(b.zero_point)) * k
        dtype = _exact_float_dtype(bound)
        if dtype is not None:
            return np.matmul(value_operand(a.codes, fa, a.zero_point, "a_codes", dtype),
                             value_operand(b.codes, fb, b.zero_point, "b_codes", dtype))
    return exact_fixed_matmul(_fixed_operand(np.asarray(a.codes), fa, a.zero_point, "a_codes"),
                              _fixed_operand(np.asarray(b.codes), fb, b.zero_point, "b_codes"))
