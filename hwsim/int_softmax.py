"""Integer softmax golden model (I-BERT-style exponent, PFPQuant output widths).

One row of integer scores ``q`` (codes at a static scale ``s_in``; the attention scale is folded into it)
becomes unsigned ``S``-bit probabilities ``p`` in Q0.S (``p / 2**S``) through integer operations only.
The constants (``M_t``, ``shift_t``, the polynomial and the table) are computed once from ``s_in``
offline (:func:`calibrate_softmax`); at run time there is no float arithmetic.

=====  ======================================================  =========================================
stage  operation                                               width (bits)
=====  ======================================================  =========================================
1      ``d = max(q) - q`` over the kept keys (masked: dropped)   ``W_in + 1`` unsigned (input int16: 17)
2      ``u = rshift_round(d * M_t, -shift_t)``: ``u`` = -(x -   ``F_T + 5`` = 17, saturated at
       max)·log2(e) in Q.F_T (16-bit ``M_t``)                   ``(F_E + 1) 2**F_T`` (exp below 2^-F_E)
3      ``z = u >> F_T`` (integer part), ``f = u & (2**F_T-1)``   z: 5, f: ``F_T`` = 12
4a     ``poly``: ``2**-f ≈ A (f - B)**2 + C`` (I-BERT's         ``(f-B)``: F_T + 2 = 14 signed; square:
       ``0.3585 (p + 1.353)**2 + 0.344`` with ``p = -f ln 2``)   28; ``A``: 16-bit Q0.16; result Q0.F_E
4b     ``table``: ``T[f >> (F_T - k)]``, ``T[i] =                ``2**k`` entries of ``F_E + 1`` bits
       round(2**(-i/2**k) 2**F_E)``                             (k = 8: 256 x 17 bits = 544 B)
5      ``e = rshift_round(v, z)``                               ``F_E + 1`` = 17 unsigned (e(0) = 2^F_E)
6      ``E = sum e`` over the row                               ``F_E + 1 + ceil(log2 N)``
7      ``R = floor(2**(F_E + S + G) / E)`` (one divide per row)  ``S + G + 1`` (E >= 2^F_E·(1-ε))
8      ``p = min(rshift_round(e * R, F_E + G), 2**S - 1)``        ``S`` unsigned (Q0.S)
=====  ======================================================  =========================================

``F_T = 12`` fraction bits of the base-2 exponent, ``F_E = 16`` fraction bits of the exponentials, ``G = 8``
guard bits of the reciprocal. Documented error vs the float softmax of the same integer input, per
probability (absolute, :func:`error_bound`): ``2 ε_exp + 2**-S + 2**-(F_E-1)``, where ``ε_exp`` is the
relative error of the exponential unit (:func:`exp_rel_error`: I-BERT's polynomial about 3e-3, the table
``1 - 2**(-1/2**k)`` from truncating ``f`` to ``k`` bits) and ``2**-S`` covers the output rounding and the
saturation of ``p = 1``. The quantization of the scores themselves is the caller's (not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.fixed_point import fixed_multiplier
from hwsim.layernorm import rshift_round

F_T = 12  # fraction bits of u = -(x - max) * log2(e)
F_E = 16  # fraction bits of the exponentials
G = 8  # guard bits of the row reciprocal
EXP_MODES = ("poly", "table")
#: I-BERT's exp polynomial 0.3585 (p + 1.353)^2 + 0.344 on p in (-ln2, 0], rewritten for f = -p / ln2.
POLY_A = 0.3585 * math.log(2.0) ** 2
POLY_B = 1.353 / math.log(2.0)
POLY_C = 0.344
A_FX = round(POLY_A * 2**16)  # Q0.16
B_FX = round(POLY_B * 2**F_T)  # Q.F_T
C_FX = round(POLY_C * 2**F_E)  # Q0.F_E


@dataclass(frozen=True)
class IntSoftmaxParams:
    """Offline constants of one softmax unit (see the module docstring)."""

    multiplier: int  # M_t, 16-bit
    shift: int  # right shift of d * M_t (negative of quantize_multiplier's shift convention)
    out_bits: int  # S
    exp: str  # "poly" or "table"
    table_bits: int  # k (table mode)

    @property
    def table(self) -> np.ndarray:
        return exp2_table(self.table_bits)


def exp2_table(k: int) -> np.ndarray:
    """``T[i] = round(2**(-i / 2**k) * 2**F_E)`` for ``i < 2**k`` (int64, ``F_E + 1`` bits)."""
    i = np.arange(2**k, dtype=np.float64)
    return np.round(np.exp2(-i / 2**k) * 2**F_E).astype(np.int64)


def exp_rel_error(exp: str, table_bits: int = 8) -> float:
    """Documented max relative error of the exponential unit ``2**-f`` over ``f`` in [0, 1)."""
    if exp == "poly":
        f = np.linspace(0, 1, 20001)
        return float(np.max(np.abs((POLY_A * (f - POLY_B) ** 2 + POLY_C) / np.exp2(-f) - 1))) + 2.0**-14
    return 1.0 - 2.0 ** (-1.0 / 2**table_bits) + 2.0**-15


def calibrate_softmax(in_scale: float, out_bits: int = 16, exp: str = "poly", table_bits: int = 8) -> IntSoftmaxParams:
    """Constants for scores at ``in_scale`` (real per code) giving Q0.``out_bits`` probabilities."""
    if exp not in EXP_MODES:
        raise ValueError(f"softmax exp must be one of {', '.join(EXP_MODES)}, not {exp!r}")
    if out_bits not in (8, 16):
        raise ValueError(f"softmax out_bits must be 8 or 16, not {out_bits!r}")
    if not 1 <= table_bits <= F_T:
        raise ValueError(f"softmax table_bits must be in 1..{F_T}, not {table_bits!r}")
    if not in_scale > 0:
        raise ValueError(f"softmax input scale must be positive, not {in_scale!r}")
    fm = fixed_multiplier(float(in_scale) * math.log2(math.e) * 2**F_T)
    return IntSoftmaxParams(fm.m, fm.shift, out_bits, exp, table_bits)


def exp2_neg(u: np.ndarray, p: IntSoftmaxParams) -> np.ndarray:
    """``2**(-u / 2**F_T)`` in Q0.F_E for ``u >= 0`` (stages 3-5)."""
    u = np.minimum(np.asarray(u, np.int64), (F_E + 1) << F_T)
    z, f = u >> F_T, u & ((1 << F_T) - 1)
    if p.exp == "poly":
        t = f - B_FX
        v = rshift_round(t * t * A_FX, 2 * F_T + 16 - F_E) + C_FX
    else:
        v = p.table[f >> (F_T - p.table_bits)]
    return _rshift_vec(v, z)


def _rshift_vec(v: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Round-half-up right shift of non-negative ``v`` by per-element ``z`` (0..F_E+1)."""
    half = np.where(z > 0, np.int64(1) << np.maximum(z - 1, 0), 0)
    return (v + half) >> z


def integer_softmax(q: np.ndarray, p: IntSoftmaxParams, keep: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis of integer scores ``q``; returns Q0.S codes (int64, ``0..2**S-1``).

    ``keep`` (bool, broadcasting to ``q``) marks the kept keys; dropped keys get probability 0.
    A row with no kept key gives all zeros.
    """
    q = np.asarray(q, np.int64)
    keep = np.ones(q.shape, bool) if keep is None else np.broadcast_to(keep, q.shape)
    big = np.iinfo(np.int64).min
    qmax = np.max(np.where(keep, q, big), axis=-1, keepdims=True)
    d = np.where(keep, qmax - q, 0)
    u = rshift_round(d * p.multiplier, p.shift)
    e = np.where(keep, exp2_neg(u, p), 0)
    total = e.sum(axis=-1, keepdims=True)
    recip = (np.int64(1) << (F_E + p.out_bits + G)) // np.maximum(total, 1)
    probs = rshift_round(e * recip, F_E + G)
    return np.minimum(probs, (1 << p.out_bits) - 1)


def error_bound(p: IntSoftmaxParams) -> float:
    """Documented absolute error bound of a probability vs the float softmax of the same input."""
    return 2.0 * exp_rel_error(p.exp, p.table_bits) + 2.0**-p.out_bits + 2.0 ** -(F_E - 1)


def softmax_op_counts(n: int, p: IntSoftmaxParams) -> dict:
    """Integer operations of one row of ``n`` scores, by unit (for the cost model)."""
    counts = {"compare": n, "sub": n, "mult16": n, "shift": 2 * n, "add": n, "div": 1, "mult24": n}
    if p.exp == "poly":
        counts.update(poly_sub=n, mult14=n, mult28x16=n, add_c=n)
    else:
        counts.update(lut_read=n)
    return counts
