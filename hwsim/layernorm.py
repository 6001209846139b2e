"""Integer LayerNorm / RMSNorm golden model (I-BERT style, plus PFPQuant's outlier-reduced ORI-LN).

Datapath of :func:`integer_norm` for one row of ``N`` integers ``q`` (the residual-stream
accumulator, any scale ``s_in``; LayerNorm is scale invariant so ``s_in`` never enters):

=====  =====================================================  ==========================================
stage  operation                                              width (signed bits; N=384 example)
=====  =====================================================  ==========================================
0      ``x = rshift_round(q, p)``, pre-shift ``p`` calibrated   ``W_x`` (default 16) -- saturated to it
       so that ``|x| < 2**(W_x-1)`` on calibration data
0'     ORI only: ``X = x * Lam_c`` (``Lam_c = round(lam_c*2^k)``,  ``W_x + W_lam`` (LN path); RMS path keeps x
       per-channel λ code) / RMS: ``L_c = round(lam_c^2 2^k)``
1      ``S1 = sum x``; ``mu = round(S1 / N)`` (LN only)          ``W_x + ceil(log2 N)`` = 25; mu: ``W_x``
2      ``d = x - mu`` (RMSNorm: ``d = x``)                      ``W_x + 1`` = 17
3      ``S2 = sum d^2`` (ORI-RMS: ``sum L_c d^2 >> k``)         ``2 (W_x+1) + ceil(log2 N)`` = 43 (48-bit acc)
4      ``sigma = isqrt(S2)`` by Newton iteration                ``ceil(bits(S2)/2)`` = 22 (unsigned)
5      ``r = round(C * 2^F_R / sigma)``, ``C = round(sqrt(N) 2^16)`` ``<= 16 + F_R + 5`` = 45 (one divide/row)
6      ``z = rshift_round(d * r, 16 + F_R - F_Z)``: (x-mu)/std   ``|z| <= sqrt(N) 2^F_Z`` → ``F_Z + 6`` = 18
       with ``F_Z`` = 12 fractional bits
7      ``t_c = requantize(sgn_c z, M_c, shift_c, zp_c, int16)``: int16 at the stage scale
       γ as a per-channel multiplier ``M_c 2^shift_c =           ``s_st = s_out · out_max / 32767``; z and
       |γ_c| 2^-F_Z / s_st`` (sign applied to z), β as the       ``sgn_c z`` need ``F_Z + 6`` bits (< int32)
       per-channel zero point ``round(β_c / s_st)``
8      ``y = requantize(t, M_o, shift_o, zp_out, out_format)``  output format (int8 or FP8 codes)
       with ``M_o 2^shift_o = s_st / s_out``
=====  =====================================================  ==========================================

RL-SAT (:mod:`hwsim.int_residual`): with a per-channel output scale (``calibrate_norm(out_scale=[N])``)
stage 7 writes ``out_format`` (int32) directly at that scale and stage 8 is skipped: the skip of a post-LN
residual leaves the unit at the accumulator scale of the GEMM it is added into, rounded once.

``eps`` is dropped (for integer inputs with ``sigma >= 1`` it is below the datapath's resolution);
rows with ``S2 == 0`` give ``z = 0``. Rounding shifts round half away from zero.

Error vs float LN (documented bound, checked in tests), in output LSBs: the final requant rounds
once (0.5) and the int16 stage adds ``1/256`` (γ, β at 1/258 of an output LSB); ``z`` carries
``2^-(F_Z+1)`` from stage 6 plus the relative errors of ``sigma`` (floor isqrt, ``1/sigma``) and of
the pre-shift (``2^(p-1)`` per element), scaled by
``|γ_c| / s_out``:
``|y - y_float| <= 0.51 + (|γ_c| / s_out) (2^-(F_Z+1) + |z| / sigma + sqrt(N) 2^(p-1) / sigma_x)``
(integer outputs, before saturation).

ORI-LN (PFPQuant): the input is the per-tensor static int8 quantization of ``x / λ`` (λ per channel,
from outlier mitigation, folded into the previous layer's output scales); λ² enters the variance sum
as the per-channel fixed-point multiplier ``L_c``, and γ' = λ·γ is folded into the γ codes (RMSNorm).
For LayerNorm, whose mean also needs ``λ x``, the input is first rebuilt as ``X = x·Λ_c`` (same
hardware multiplier) and the vanilla path runs on ``X``. Vanilla integer norm quantizes ``x`` itself
per-tensor: a few outlier channels then leave the other channels a handful of levels.

:func:`norm_op_counts` exports per-element / per-row operation counts for the energy table and
:meth:`IntNormSpec.latency` the cycle count for the cycle model.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

F_R = 24  # reciprocal fractional bits
F_Z = 12  # fractional bits of the normalised value z
C_FRAC = 16  # fractional bits of the sqrt(N) constant


def rshift_round(x: np.ndarray, shift: int, *, in_place: bool = False) -> np.ndarray:
    """Arithmetic right shift with round-half-away-from-zero; ``shift <= 0`` shifts left.

    ``in_place=True`` overwrites ``x`` (an int64 array the caller owns) instead of allocating.
    """
    x = np.asarray(x, np.int64)
    if shift <= 0:
        return x << -shift
    # (x + half - [x < 0]) >> shift (floor) equals sign(x) * ((|x| + half) >> shift): ties go away from zero
    negative = x < 0
    out = x if in_place else x.copy()
    out += np.int64(1) << (shift - 1)
    out -= negative
    out >>= shift
    return out


def isqrt_newton(n: np.ndarray) -> tuple[np.ndarray, int]:
    """Floor integer square root by Newton iteration, vectorised; returns ``(root, iterations)``.

    Start value ``2**ceil(bits(n)/2)`` (>= sqrt(n)); iterate ``x = (x + n // x) // 2`` while it decreases.
    ``iterations`` is the maximum over elements (the hardware runs that many).
    """
    n = np.asarray(n, np.int64)
    if np.any(n < 0):
        raise ValueError(f"isqrt_newton needs non-negative input, not min {int(n.min())!r}")
    bits = np.zeros(n.shape, np.int64)
    nz = n > 0
    bits[nz] = np.floor(np.log2(n[nz].astype(np.float64))).astype(np.int64) + 1
    x = np.where(nz, np.int64(1) << ((bits + 1) // 2), 0)
    iterations = 0
    while True:
        safe = np.maximum(x, 1)
        y = np.where(nz, (x + n // safe) // 2, 0)
        if not np.any(y < x):
            break
        x = np.where(y < x, y, x)
        iterations += 1
    return x, iterations


@dataclass(frozen=True)
class IntNormParams:
    """Calibrated constants of one integer norm layer (see module docstring for widths)."""

    kind: str  # "layernorm" | "rmsnorm"
    n: int
    pre_shift: int
    gamma_sign: np.ndarray  # int64 [N], ±1
    multiplier: np.ndarray  # int64 [N]: M_c
    shift: np.ndarray  # int64 [N]
    zero_point: np.ndarray  # int64 [N]: round(β_c / s_stage) at the int16 stage
    out_format: str
    out_scale: float
    lam_codes: np.ndarray | None = None  # ORI: Λ_c (LN) or L_c = λ_c² (RMS) codes, LAM_FRAC fractional bits
    x_bits: int = 16
    fine: tuple[int, int] = (0, 0)  # (M, shift) from the int16 stage to out_format
    out_zero_point: int = 0
    stage_scale: float = 0.0
    direct: bool = False  # RL-SAT: stage 7 writes the per-channel output scale directly (no int16 stage)


LAM_FRAC = 8


def calibrate_norm(kind: str, gamma, beta, *, in_absmax: float, out_scale: float, out_format: str = "int8",
                   zero_point: int = 0, x_bits: int = 16, lam=None) -> IntNormParams:
    """Build :class:`IntNormParams` from float γ/β, the calibrated max |input integer| and output scale.

    ``lam`` (ORI-LN): per-channel λ >= 1; γ' = λγ (RMSNorm) is folded into the γ codes.

    ``out_scale`` per channel (``[N]``, RL-SAT, :mod:`hwsim.int_residual`): the output is written directly
    at that scale by stage 7 (``M_c 2^shift_c = |γ_c| 2^-F_Z / s_c``, β as the zero point ``round(β_c / s_c)``,
    saturated to ``out_format``, typically int32: the accumulator scale of the GEMM the output is added
    into): one rounding, no int16 stage and no stage 8. ``zero_point`` must then be 0.
    """
    from hwsim.formats import get_format
    from hwsim.requant import quantize_multiplier

    if kind not in ("layernorm", "rmsnorm"):
        raise ValueError(f"kind must be 'layernorm' or 'rmsnorm', not {kind!r}")
    gamma = np.asarray(gamma, np.float64)
    n = gamma.shape[-1]
    beta = np.zeros(n) if beta is None else np.asarray(beta, np.float64)
    bound = 2 ** (x_bits - 1) - 1
    pre_shift = max(0, math.ceil(math.log2(max(float(in_absmax), 1.0) / bound))) if in_absmax > bound else 0
    lam_codes = None
    g_eff = gamma
    if lam is not None:
        lam = np.asarray(lam, np.float64)
        if kind == "rmsnorm":
            lam_codes = np.round(lam * lam * 2**LAM_FRAC).astype(np.int64)
            g_eff = gamma * lam
        else:
            lam_codes = np.round(lam * 2**LAM_FRAC).astype(np.int64)
    spec = get_format(out_format)
    if np.ndim(out_scale):
        return _direct_params(kind, n, pre_shift, g_eff, beta, np.asarray(out_scale, np.float64), out_format,
                              zero_point, lam_codes, x_bits)
    if spec.kind != "int" and zero_point:
        raise ValueError(f"zero_point applies to integer output formats only, not {zero_point!r}")
    # int16 stage at a fine scale (γ multiply, β as zero point), then one requant to out_format:
    # rounding β separately at the output scale would add a second half-LSB error.
    out_max = spec.hi if spec.kind == "int" else spec.max
    stage_scale = float(out_scale) * out_max / (2**15 - 1)
    fine = tuple(int(v) for v in quantize_multiplier(stage_scale / float(out_scale)))
    m, sh = quantize_multiplier(np.abs(g_eff) * 2.0**-F_Z / stage_scale)
    sign = np.where(g_eff < 0, -1, 1).astype(np.int64)
    zp = np.round(beta / stage_scale).astype(np.int64)
    return IntNormParams(kind, n, pre_shift, sign, np.asarray(m, np.int64), np.asarray(sh, np.int64), zp,
                         out_format, float(out_scale), lam_codes, x_bits, fine, int(zero_point), stage_scale)


def _direct_params(kind, n, pre_shift, g_eff, beta, out_scale, out_format, zero_point, lam_codes, x_bits):
    """:class:`IntNormParams` writing ``out_format`` at the per-channel ``out_scale`` from stage 7."""
    from hwsim.formats import get_format
    from hwsim.requant import quantize_multiplier

    if get_format(out_format).kind != "int" or zero_point:
        raise ValueError(f"a per-channel norm output needs an integer format without zero point, not "
                         f"{out_format!r} with zero point {zero_point!r}")
    if out_scale.shape != (n,) or not np.all(out_scale > 0):
        raise ValueError(f"a per-channel norm output scale must be positive with shape ({n},), not "
                         f"shape {out_scale.shape!r}")
    ratio = np.abs(g_eff) * 2.0**-F_Z / out_scale
    if float(np.max(ratio)) * math.sqrt(n) * 2**F_Z >= 2**30:  # |z| <= sqrt(N) 2^F_Z; the requant's 32-bit lane
        raise ValueError(f"a per-channel norm output scale down to {float(np.min(out_scale)):.3g} is too fine: "
                         f"|γ| z / s would leave 30 bits")
    m, sh = quantize_multiplier(ratio)
    sign = np.where(g_eff < 0, -1, 1).astype(np.int64)
    zp = np.round(beta / out_scale).astype(np.int64)
    return IntNormParams(kind, n, pre_shift, sign, np.asarray(m, np.int64), np.asarray(sh, np.int64), zp,
                         out_format, out_scale, lam_codes, x_bits, direct=True)


def integer_norm(q: np.ndarray, p: IntNormParams, *, rounding: str = "gemmlowp",
                 stats: dict | None = None, return_stage: bool = False):
    """Run the integer LayerNorm/RMSNorm on integer rows ``q`` (..., N); returns output integers
    (or codes for float output formats). ``return_stage=True`` also returns the int16 stage values
    ``t`` (scale ``p.stage_scale``), which a residual connection can read at higher precision.

    ``stats`` (optional dict) receives ``newton_iterations`` and ``x_saturated`` counts.
    """
    from hwsim.requant import requantize

    q = np.asarray(q, np.int64)
    if q.shape[-1] != p.n:
        raise ValueError(f"integer_norm: row length must be {p.n}, not {q.shape[-1]!r}")
    bound = 2 ** (p.x_bits - 1) - 1
    x = rshift_round(q, p.pre_shift) if p.pre_shift else q
    sat = 0
    if x.size and (x.min() < -bound or x.max() > bound):  # saturate to the unit's x_bits input lanes
        sat = int(np.count_nonzero(np.abs(x) > bound))
        x = np.clip(x, -bound, bound)
    n = p.n
    if p.lam_codes is not None and p.kind == "layernorm":
        x = rshift_round(x * p.lam_codes, 0)  # X = x * Λ (LAM_FRAC extra fractional bits)
    if p.kind == "layernorm":
        s1 = x.sum(axis=-1, keepdims=True)
        # round(S1 / N) half away from zero: one divide by the constant N per row
        mu = np.where(s1 >= 0, (2 * s1 + n) // (2 * n), -((-2 * s1 + n) // (2 * n)))
        d = x - mu
    else:
        d = x
    if p.lam_codes is not None and p.kind == "rmsnorm":
        s2 = rshift_round((d * d * p.lam_codes).sum(axis=-1, keepdims=True), LAM_FRAC)
    else:
        s2 = np.einsum("...i,...i->...", d, d)[..., None]  # Σ d² per row (exact int64), without a d² array
    sigma, iters = isqrt_newton(s2)
    c = round(math.sqrt(n) * 2**C_FRAC)
    num = np.int64(c) << F_R
    safe = np.maximum(sigma, 1)
    r = np.where(sigma > 0, (num + safe // 2) // safe, 0)
    z = rshift_round(d * r, C_FRAC + F_R - F_Z, in_place=True)
    acc = z if np.all(p.gamma_sign == 1) else z * p.gamma_sign
    if stats is not None:
        stats["newton_iterations"] = max(stats.get("newton_iterations", 0), iters)
        stats["x_saturated"] = stats.get("x_saturated", 0) + sat
    if p.direct:  # RL-SAT: stage 7 straight to the per-channel output scale (one rounding)
        y = requantize(acc, p.multiplier, p.shift, p.zero_point, out_format=p.out_format, rounding=rounding)
        return (y, y) if return_stage else y
    y16 = requantize(acc, p.multiplier, p.shift, p.zero_point, out_format="int16", rounding=rounding)
    table = _stage8_table(p.fine[0], p.fine[1], p.out_zero_point, p.out_format, rounding)
    y = table[y16 + 32768] if table is not None else \
        requantize(y16, p.fine[0], p.fine[1], p.out_zero_point, out_format=p.out_format, rounding=rounding)
    return (y, y16) if return_stage else y


@functools.lru_cache(maxsize=256)
def _stage8_table(multiplier: int, shift: int, zero_point: int, out_format: str, rounding: str) -> np.ndarray | None:
    """Stage 8 (one per-tensor requant of the int16 stage) evaluated once over all 65,536 int16 inputs, by
    the same :func:`hwsim.requant.requantize` (an exact table of it, indexed by ``t + 32768``); None for MX
    outputs, which are not element-wise."""
    from hwsim.formats import get_format
    from hwsim.requant import requantize

    if get_format(out_format).kind == "mx":
        return None
    table = requantize(np.arange(-32768, 32768, dtype=np.int64), multiplier, shift, zero_point,
                       out_format=out_format, rounding=rounding)
    table.flags.writeable = False
    return table


def float_norm(x: np.ndarray, kind: str, gamma, beta=None, eps: float = 1e-12) -> np.ndarray:
    """Float64 LayerNorm / RMSNorm reference."""
    x = np.asarray(x, np.float64)
    if kind == "layernorm":
        mu = x.mean(-1, keepdims=True)
        y = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    else:
        y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    y = y * gamma
    return y if beta is None else y + beta


@dataclass(frozen=True)
class IntNormSpec:
    """Throughput/latency parameters of the norm unit for the cycle model.

    ``lanes`` elements per cycle in each pass; ``div_latency`` cycles per integer divide (used by the
    Newton square root, the mean and the reciprocal); ``pipeline`` cycles of pass-3 pipeline depth.
    """

    lanes: int = 16
    div_latency: int = 24
    newton_iterations: int = 12
    pipeline: int = 4

    def latency(self, n: int, kind: str = "layernorm") -> int:
        """Cycles for one row of ``n`` elements: LayerNorm streams the row three times (sum; sum of
        squared deviations; normalise + γ + β + requant), RMSNorm twice, ``lanes`` elements per cycle;
        plus the mean divide (LayerNorm), ``newton_iterations`` divide+add steps and one reciprocal
        divide of ``div_latency`` cycles each, plus the pipeline depth."""
        passes = (3 if kind == "layernorm" else 2) * math.ceil(n / self.lanes)
        divides = self.newton_iterations + 1 + (1 if kind == "layernorm" else 0)
        return passes + divides * self.div_latency + self.pipeline


def norm_op_counts(n: int, kind: str = "layernorm", *, ori: bool = False, newton_iterations: int = 12) -> dict:
    """Integer operations for ONE row of ``n`` elements (energy table inputs).

    Keys: ``add`` (adds/subs incl. accumulations), ``mult`` (integer multiplies), ``shift`` (rounding
    shifts), ``div`` (integer divides: mean, Newton steps, reciprocal), ``sqrt_iterations``, ``requant``
    (requant-unit invocations).
    """
    if kind not in ("layernorm", "rmsnorm"):
        raise ValueError(f"kind must be 'layernorm' or 'rmsnorm', not {kind!r}")
    ln = kind == "layernorm"
    add = n * (1 + (2 if ln else 0)) + n  # sum-of-squares acc (+ sum acc + subtract mean) + beta add
    mult = n * 3  # square, z = d*r, gamma
    if ori:
        mult += n  # λ (LN: X = xΛ; RMS: L_c d²)
    div = (1 if ln else 0) + newton_iterations + 1
    return {"add": add + 2 * newton_iterations, "mult": mult, "shift": 2 * n + newton_iterations, "div": div,
            "sqrt_iterations": newton_iterations, "requant": n, "elements": n}
