"""Integer units of the fixed-point nonlinear kernels: operation counts at their widths, for cycles and energy.

In fixed-point mode (``graph.meta['fixed_point']``) softmax, GELU, SiLU, SwiGLU, RoPE and mean pooling run on
the integer kernels (:mod:`hwsim.int_softmax`, :mod:`hwsim.int_activations`, :mod:`hwsim.int_rope`,
:mod:`hwsim.int_pool`), and an RL-SAT residual ``add`` (``attrs['residual'] == 'rl-sat'``) on
:mod:`hwsim.int_residual`'s accumulator adder and requant multipliers. :func:`int_unit_ops` lists, per
graph op, every unit those kernels use as :class:`IntUnit` ``(unit, op, count, a_bits, b_bits)``, where ``op`` is one of

``add`` (adder / subtractor / comparator / rounding shift of ``a_bits``), ``mult`` (``a_bits x b_bits``
multiplier), ``lut`` (a read of an ``a_bits`` table word; ``b_bits`` = table entries), ``div`` (a
restoring divider producing ``b_bits`` quotient bits over an ``a_bits`` dividend).

The widths are the ones the kernel modules document (their constants are imported, not repeated).
Cycles (:func:`hwsim.perf.timing.vector_counts`): ``ceil((adds + mults) / ops_per_cycle)`` on the vector
unit's integer lanes, ``ceil(lut reads / lanes)`` table reads, ``ceil(divides * quotient bits / lanes)``
divider cycles (one radix-2 divider per lane), plus the unit latency. Energy
(:func:`hwsim.perf.energy.op_energy`): ``int_add(bits)`` per add, ``int_mult * a * b / 32**2`` per
multiply, the SRAM per-bit entry per table bit read, ``quotient bits x subtracts_per_quotient_bit x
int_add(dividend bits)`` per divide. Table sizes (``lut_bytes``) are reported per op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.int_activations import F_X, SIG_RANGE_LOG2
from hwsim.int_residual import ACC_BITS
from hwsim.int_softmax import F_E, F_T, G

#: Op kinds that run on an integer unit in fixed-point mode.
FIXED_KINDS = frozenset({"softmax", "gelu", "silu", "swiglu", "rope", "mean_pool"})


@dataclass(frozen=True)
class IntUnit:
    """``count`` uses of one integer operation of a kernel (module docstring)."""

    unit: str
    op: str
    count: int
    a_bits: int
    b_bits: int = 0


def _bits(graph, tensor: str, default: int = 16) -> int:
    q = graph.tensors[tensor].quant
    if q is None:
        return default
    from hwsim.formats import get_format

    return int(get_format(q.format).bits)


def int_unit_ops(graph, op) -> tuple[tuple[IntUnit, ...], int]:
    """``(units, table bytes)`` of ``op`` in fixed-point mode (empty for kinds without an integer unit)."""
    fp = graph.meta.get("fixed_point") or {}
    out = graph.tensors[op.outputs[0]]
    e = out.size
    if op.kind == "softmax":
        return _softmax(graph, op, fp, e, out.shape)
    if op.kind in ("gelu", "silu", "swiglu"):
        return _activation(graph, op, fp, e)
    if op.kind == "rope":
        r = int(fp.get("rope_bits", 16))
        w = _bits(graph, op.inputs[0])
        seq, dim = out.shape[-2], out.shape[-1]
        units = (IntUnit("rope.table", "lut", 2 * e, r, seq * dim // 2), IntUnit("rope.mult", "mult", 2 * e, w, r),
                 IntUnit("rope.add", "add", e, w + r + 1), IntUnit("rope.requant", "mult", e, w + r + 1, 16),
                 IntUnit("rope.round", "add", e, w + r + 17))
        return units, math.ceil(2 * seq * dim // 2 * r / 8)
    if op.kind == "add" and op.attrs.get("residual") == "rl-sat":
        return _rl_sat(graph, op, e), 0
    if op.kind == "mean_pool":
        x = graph.tensors[op.inputs[0]]
        seq = x.shape[-2] if len(x.shape) >= 2 else 1
        acc = _bits(graph, op.inputs[0]) + max(1, math.ceil(math.log2(max(seq, 2))))
        return (IntUnit("pool.sum", "add", x.size, acc), IntUnit("pool.div", "div", e, acc + 1, acc)), 0
    return (), 0


def _rl_sat(graph, op, e: int) -> tuple[IntUnit, ...]:
    """Skip into the accumulator domain (a 32-bit multiplier and its rounding; none when the skip already sits
    at the accumulator scale), the accumulator's 32-bit add, one requant (32 x 32 multiply, rounding)."""
    i = int(op.attrs["accumulator"])
    acc, skip = graph.tensors[op.inputs[i]].quant, graph.tensors[op.inputs[1 - i]].quant
    w = _bits(graph, op.inputs[1 - i])
    units = []
    if acc is None or skip is None or not np.allclose(np.asarray(skip.scale, np.float64),
                                                      np.asarray(acc.scale, np.float64), rtol=1e-12, atol=0):
        units += [IntUnit("residual.skip_scale", "mult", e, w, 32), IntUnit("residual.skip_round", "add", e, w + 32)]
    units += [IntUnit("residual.acc_add", "add", e, ACC_BITS), IntUnit("residual.requant", "mult", e, ACC_BITS, 32),
              IntUnit("residual.round", "add", e, ACC_BITS + 32)]
    return tuple(units)


def _softmax(graph, op, fp, e: int, shape) -> tuple[tuple[IntUnit, ...], int]:
    s = int(fp.get("softmax_bits", 16))
    w = _bits(graph, op.inputs[0])
    n = shape[-1] if shape else 1
    rows = e // max(n, 1)
    sum_bits = F_E + 1 + max(1, math.ceil(math.log2(max(n, 2))))
    units = [IntUnit("softmax.max", "add", e, w), IntUnit("softmax.sub", "add", e, w + 1),
             IntUnit("softmax.log2e", "mult", e, w + 1, 16), IntUnit("softmax.round", "add", e, w + 17),
             IntUnit("softmax.exp_shift", "add", e, F_E + 1), IntUnit("softmax.sum", "add", e, sum_bits),
             IntUnit("softmax.reciprocal", "div", rows, F_E + s + G + 1, s + G + 1),
             IntUnit("softmax.normalise", "mult", e, F_E + 1, s + G + 1),
             IntUnit("softmax.out_round", "add", e, F_E + s + G + 2)]
    table = 0
    if fp.get("exp", "poly") == "poly":
        units += [IntUnit("softmax.exp_poly", "add", e, F_T + 2),
                  IntUnit("softmax.exp_poly", "mult", e, F_T + 2, F_T + 2),
                  IntUnit("softmax.exp_poly", "mult", e, 2 * F_T + 4, 16),
                  IntUnit("softmax.exp_poly", "add", e, F_E + 1)]
    else:
        k = int(fp.get("exp_table_bits", 8))
        units.append(IntUnit("softmax.exp_table", "lut", e, F_E + 1, 2**k))
        table = math.ceil(2**k * (F_E + 1) / 8)
    return tuple(units), table


def _activation(graph, op, fp, e: int) -> tuple[tuple[IntUnit, ...], int]:
    w = _bits(graph, op.inputs[0])
    u = F_X + 8  # the 20-bit internal input
    units = [IntUnit(f"{op.kind}.in_scale", "mult", e, w, 16), IntUnit(f"{op.kind}.in_round", "add", e, w + 16)]
    if op.kind == "gelu":
        units += [IntUnit("gelu.erf_clip", "add", e, F_X + 2), IntUnit("gelu.erf_square", "mult", e, F_X + 2, F_X + 2),
                  IntUnit("gelu.erf_a", "mult", e, 2 * F_X + 2, 16), IntUnit("gelu.erf_add", "add", e, 25),
                  IntUnit("gelu.x_times", "mult", e, u, 26), IntUnit("gelu.requant", "mult", e, u + 26, 16),
                  IntUnit("gelu.round", "add", e, u + 42)]
        return tuple(units), 0
    k = int(fp.get("sigmoid_table_bits", 8))
    frac = F_X + SIG_RANGE_LOG2 - k
    units += [IntUnit("sigmoid.table", "lut", 2 * e, 17, 2**k + 1), IntUnit("sigmoid.interp_sub", "add", e, 17),
              IntUnit("sigmoid.interp", "mult", e, 17, frac), IntUnit("sigmoid.interp_add", "add", e, 17),
              IntUnit("silu.x_times", "mult", e, u, 17)]
    if op.kind == "swiglu":
        up = _bits(graph, op.inputs[1])
        units += [IntUnit("swiglu.round", "add", e, u + 17), IntUnit("swiglu.up", "mult", e, u + 4, up),
                  IntUnit("swiglu.requant", "mult", e, u + 4 + up, 16)]
    else:
        units.append(IntUnit("silu.requant", "mult", e, u + 17, 16))
    return tuple(units), math.ceil((2**k + 1) * 17 / 8)


def units_label(units) -> str:
    """Compact per-op table label: ``unit:op a×b`` entries, one per distinct unit."""
    seen = []
    for x in units:
        tag = f"{x.unit}:{x.op}{x.a_bits}" + (f"x{x.b_bits}" if x.op in ("mult", "div", "lut") else "")
        if tag not in seen:
            seen.append(tag)
    return " ".join(seen)
