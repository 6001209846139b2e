"""RL-SAT: the residual link added inside the GEMM accumulator (PFPQuant), and its widths.

A residual add ``r' = r + W·a`` joins the *skip* ``r`` (the residual stream, or a norm output) and the
output of the GEMM that writes into the stream. The GEMM's exact accumulator ``acc_c = Σ_k a_k w_kc``
(+ bias) lives at the scale ``ŝ_c = s_a·s_w[c]`` (per-tensor activation scale times the per-channel
weight scale). Two ways to add, in integers:

* **two-step** (the ``add`` kernel of :mod:`hwsim.int_executor`): the accumulator is requantized to the
  residual spec (rounding 1 at the residual LSB ``s_r'``), the skip is requantized to the same spec
  (rounding 2, also at ``s_r'``), the two int16 values are added and saturated;
* **RL-SAT** (this module): the skip is brought into the accumulator domain ``ŝ_c`` (a rounding at the
  accumulator LSB, which is finer than ``s_r'`` by the ratio ``s_r'/ŝ_c``: a median of ~1,000 on SmolLM2
  without outlier mitigation, only ~3 with GOM MCOM's compressed stream; exact when the skip is already at
  ``ŝ_c``), added inside the 32-bit accumulator, and the sum is requantized once to the residual spec:
  **one rounding at the residual LSB instead of two**, and no saturation of either term before the sum.

Integer dataflow (``q`` int16 residual codes, ``acc`` int32; one row of ``N`` channels):

**Pre-norm llama block (SmolLM2).** ``r`` is the int16 stream (static ``s_r``); the norm output feeds only
the GEMMs. GOM / SmoothQuant read the skip through a per-channel factor ``f_c`` (an exact rescale of the
scale, no arithmetic), so the skip's scale is ``s_r·f_c``::

    acc_c = Σ_k a_k w_kc + round(b_c / ŝ_c)        int8 x int8, K <= 1536: |acc| < 2^25       int32
    two-step:  y_c  = sat16(round(acc_c · ŝ_c / s_r'))                 requant (32-bit M)    int16
               x_c  = sat16(round(q_c · s_r f_c / s_r'))                requant (32-bit M)    int16
               q'_c = sat16(y_c + x_c)                                                         int16
    RL-SAT:    x̂_c  = sat32(round(q_c · M_c · 2^sh_c)),  M_c 2^sh_c = s_r f_c / ŝ_c
                                                       16 x 31-bit product (47 bits)         int32
               t_c  = sat32(acc_c + x̂_c)               the accumulator's 32-bit adder         int32
               q'_c = sat16(round(t_c · M'_c · 2^sh'_c)), M'_c 2^sh'_c = ŝ_c / s_r'
                                                       32 x 31-bit product (62 bits)         int16

**Post-LN BERT block (MiniLM).** The skip is the previous LayerNorm's output ``h = LN(r)``. The norm unit
(:func:`hwsim.layernorm.integer_norm`) computes the normalised ``z`` (``F_Z`` = 12 fractional bits,
18 bits) and, with RL-SAT, writes the skip **directly at the accumulator scale** ``ŝ_c / f_c`` of the GEMM
it will be added to (its per-channel γ multiplier and β zero point are calibrated for that scale; one
rounding), instead of the int16 stage at ``s_st`` that the two-step path requantizes again::

    two-step:  h16_c = sat16(round(z_c |γ_c| 2^-12 / s_st) + round(β_c / s_st))  rounding 1    int16
               x_c   = sat16(round(h16_c · s_st f_c / s_r'))                       rounding 2    int16
               y_c   = sat16(round(acc_c · ŝ_c / s_r'))                             rounding 3    int16
               q'_c  = sat16(y_c + x_c)
    RL-SAT:    ĥ_c   = sat32(round(z_c |γ_c| 2^-12 f_c / ŝ_c) + round(β_c f_c / ŝ_c))  rounding 1 int32
               t_c   = sat32(acc_c + ĥ_c)             (the skip is already at ŝ_c: x̂ = ĥ exactly)
               q'_c  = sat16(round(t_c · ŝ_c / s_r'))                               rounding 2    int16

In both blocks the GEMM inputs are unchanged (``ĥ`` is requantized to int8 for the Q/K/V or FFN GEMMs the
same way as the int16 stage was). Costs of RL-SAT: the skip and the GEMM's accumulator are held as
int32 (twice the int16 stream's storage), and the add is a 32-bit add plus one requant instead of two
requants and a 16-bit add.

Widths and rounding. Accumulator ``W_acc`` = 32 bits (signed; sums saturate and are counted).
Multipliers are the requant unit's 32-bit ``M 2^sh`` (:func:`hwsim.requant.quantize_multiplier`, relative
error ``<= 2^-31``); every product stays below ``2^62``; every rounding is a single rounding of the exact
product (``rounding="single"`` of :func:`hwsim.requant.requantize`: ``floor(p·2^sh + 1/2)``). Error of
``q'`` vs the exact real sum, in residual LSBs (before saturation):
RL-SAT ``<= 1/2 + (1/2)·ŝ_c/s_r' + 2^-31·|t|·ŝ_c/s_r'``; two-step ``<= 1`` (two independent half-LSB
roundings).
"""

from __future__ import annotations

import numpy as np

from hwsim.formats import get_format
from hwsim.requant import quantize_multiplier, requantize

#: Accumulator width (signed bits) of the GEMM the residual is added into.
ACC_BITS = 32
ACC_LO, ACC_HI = -(1 << (ACC_BITS - 1)), (1 << (ACC_BITS - 1)) - 1
#: The rounding of every rescale in this module (one rounding of the exact product).
ROUNDING = "single"


def rescale(x, real, out_format: str, zero_point=0) -> np.ndarray:
    """``sat(round(x · real) + zero_point)`` to ``out_format`` (integer values, int64): the requant unit's
    32-bit multiplier per channel (``real`` scalar or ``[N]``), one rounding of the exact product."""
    m, sh = quantize_multiplier(np.asarray(real, np.float64))
    return requantize(np.asarray(x, np.int64), m, sh, zero_point, out_format=out_format, rounding=ROUNDING)


def skip_to_accumulator(skip, skip_scale, acc_scale) -> np.ndarray:
    """The skip's integers ``skip`` (scale ``skip_scale``, scalar or ``[N]``) at the accumulator scale
    ``acc_scale`` (``[N]`` or scalar): ``sat32(round(skip · skip_scale / acc_scale))``; exact when the two
    scales are equal (multiplier ``2^30 · 2^-30``)."""
    return rescale(skip, np.asarray(skip_scale, np.float64) / np.asarray(acc_scale, np.float64), f"int{ACC_BITS}")


def rl_sat_add(acc, skip, skip_scale, acc_scale, out_scale, out_format: str = "int16", zero_point: int = 0,
               stats: dict | None = None) -> np.ndarray:
    """RL-SAT residual add (module docstring): returns the output integers (int64, in ``out_format``'s range).

    Parameters
    ----------
    acc : array_like of int, ``[..., N]``
        The writer GEMM's exact accumulators (bias included), at real scale ``acc_scale`` (``[N]`` or scalar).
    skip : array_like of int, ``[..., N]``
        The skip's integers (zero point removed) at real scale ``skip_scale`` (scalar or ``[N]``).
    out_scale : float
        Real scale of the output (the residual stream's ``s_r'``); ``zero_point`` its zero point.
    stats : dict, optional
        Receives ``acc_saturated`` (count of 32-bit sums that saturated).
    """
    acc = np.asarray(acc, np.int64)
    if acc.size and (acc.min() < ACC_LO or acc.max() > ACC_HI):
        raise ValueError(f"rl_sat_add: the accumulator must fit int{ACC_BITS}, not {int(np.abs(acc).max())}")
    total = acc + skip_to_accumulator(skip, skip_scale, acc_scale)
    saturated = (total < ACC_LO) | (total > ACC_HI)
    if stats is not None:
        stats["acc_saturated"] = stats.get("acc_saturated", 0) + int(np.count_nonzero(saturated))
    total = np.clip(total, ACC_LO, ACC_HI)
    return rescale(total, np.asarray(acc_scale, np.float64) / float(out_scale), out_format, zero_point)


def two_step_add(acc, skip, skip_scale, acc_scale, out_scale, out_format: str = "int16",
                 zero_point: int = 0) -> np.ndarray:
    """The vanilla two-step residual on the same operands, for comparison: accumulator and skip each
    requantized to the output scale (two roundings at its LSB, the same rounding rule), then added and
    saturated. (The graph executor's ``add`` kernel is this rule with the requant unit's gemmlowp
    rounding.)"""
    fmt = get_format(out_format)
    y = rescale(acc, np.asarray(acc_scale, np.float64) / float(out_scale), out_format)
    x = rescale(skip, np.asarray(skip_scale, np.float64) / float(out_scale), out_format)
    return np.clip(y + x + int(zero_point), fmt.lo, fmt.hi)


__all__ = ["ACC_BITS", "ROUNDING", "rescale", "rl_sat_add", "skip_to_accumulator", "two_step_add"]
