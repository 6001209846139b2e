"""Integer GELU (I-BERT i-GELU), sigmoid/SiLU (table + linear interpolation) and SwiGLU golden models.

Inputs are signed integer codes ``q`` (zero point 0) at a static scale ``s_in``; outputs are codes of an
integer output spec (any scale / zero point / width). The constants come from :func:`fixed_multiplier`
offline; at run time only integer multiply, add, shift, compare and table reads remain.

**i-GELU** (Kim et al., I-BERT, ICML 2021): ``GELU(x) = x/2 (1 + erf(x/√2))`` with
``erf(u) ≈ sgn(u) [a (min(|u|, -b) + b)**2 + 1]``, ``a = -0.2888``, ``b = -1.769``:

=====  =================================================  ==============================================
stage  operation                                          width (bits)
=====  =================================================  ==============================================
1      ``u = round(q · M_u 2**-sh_u)``: x/√2 in Q.12       ``W_in + 16`` product; u saturated to 20 bits
       (16-bit ``M_u``)                                    (``|x| <= 181``)
2      ``c = min(|u|, B) - B`` (``B = round(1.769 2**12)``) 14 signed
3      ``L = 2**24 + round(c**2 · A 2**-16)``              c²: 26; ``A = round(a 2**16)``: 16 signed;
       (``erf`` magnitude in Q.24)                         L: 25 unsigned
4      ``P = u (2**24 + sgn(u) L)``                          20 + 26 = 46 signed
5      ``y = requant(P, √2 / (2**37 s_out))``             16-bit multiplier, output format
=====  =================================================  ==============================================

Error vs float GELU of the same input: ``|x|/2 · ε_erf + 0.5 + 2**-11 |x| / s_out`` output LSBs with
``ε_erf`` = :data:`ERF_ABS_ERROR` (the polynomial's max |erf error|, 0.096 near 0), see :func:`gelu_error_bound`.

**Sigmoid** ``σ(x)``: ``u = x`` in Q.12 (16-bit multiplier), ``a = min(|u|, 16·2**12 - 1)``, a table of
``2**k + 1`` Q0.16 entries ``T[i] = round(σ(i h) 2**16)``, ``h = 16 / 2**k``, indexed by the top ``k`` bits of
``a`` and linearly interpolated with the remaining ``16 - k`` bits (one multiply); ``σ(-x) = 1 - σ(x)``.
Width: ``a`` 16 bits unsigned, ``T`` 17 bits (k = 8: 257 x 17 bits = 546 B), interpolation product
17 + 8 bits. Error: ``h**2/8 · max|σ''| + 2**-16`` (k = 8: 5e-5) plus the 2**-13 input rounding
(:data:`SIGMOID_ABS_ERROR`).

**SiLU** ``x σ(x)``: ``P = u σ`` (20 + 17 bits) requantized by ``2**-28 / s_out``. **SwiGLU**
``silu(g) · up``: ``v = round(u σ 2**-16)`` (SiLU in Q.12, 24 bits) times the up codes (``W_up``), requantized
by ``s_up 2**-12 / s_out``.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.fixed_point import apply_multiplier, fixed_multiplier, requant_codes
from hwsim.layernorm import rshift_round

F_X = 12  # fraction bits of the internal fixed-point input
U_MAX = (1 << 19) - 1  # saturation of the internal input (20 bits signed)
GELU_A, GELU_B = -0.2888, -1.769
A_FX = round(GELU_A * 2**16)
B_FX = round(-GELU_B * 2**F_X)
SIG_RANGE_LOG2 = 4  # the sigmoid table spans [0, 16)
ERF_ABS_ERROR = 0.0963  # max |i-GELU erf polynomial - erf| (at u -> 0+; tested)


def to_q12(q: np.ndarray, in_scale: float) -> np.ndarray:
    """Codes at ``in_scale`` to Q.12 fixed point, saturated to 20 bits."""
    return np.clip(apply_multiplier(q, fixed_multiplier(in_scale * 2**F_X)), -U_MAX, U_MAX)


# -- GELU -------------------------------------------------------------------------------------------
def erf_q24(u: np.ndarray) -> np.ndarray:
    """I-BERT's erf polynomial of Q.12 ``u`` in Q.24 (signed)."""
    c = np.minimum(np.abs(u), B_FX) - B_FX
    mag = (1 << 24) + rshift_round(c * c * A_FX, 16)
    return np.where(u < 0, -mag, mag)


def integer_gelu(q: np.ndarray, in_scale: float, out_scale: float, out_format: str, zero_point: int = 0) -> np.ndarray:
    """i-GELU of codes ``q`` at ``in_scale``; output codes at ``out_scale`` / ``zero_point``."""
    u = to_q12(q, in_scale / math.sqrt(2.0))
    p = u * ((1 << 24) + erf_q24(u))
    return requant_codes(p, math.sqrt(2.0) / (2.0 ** (2 * F_X + 13) * out_scale), out_format, zero_point)


def gelu_error_bound(x: np.ndarray, out_scale: float) -> np.ndarray:
    """Documented error bound (output LSBs) of :func:`integer_gelu` at real input ``x``."""
    ax = np.abs(np.asarray(x, np.float64))
    return (ax / 2 * (ERF_ABS_ERROR + 2.0**-10) + ax * 2.0**-11 + 2.0**-11) / out_scale + 0.5


# -- sigmoid / SiLU / SwiGLU -----------------------------------------------------------------------------
def sigmoid_table(k: int) -> np.ndarray:
    """``2**k + 1`` entries ``round(σ(i · 16 / 2**k) · 2**16)`` (int64)."""
    x = np.arange(2**k + 1, dtype=np.float64) * 2.0**SIG_RANGE_LOG2 / 2**k
    return np.round(2.0**16 / (1.0 + np.exp(-x))).astype(np.int64)


def sigmoid_q16(u: np.ndarray, k: int = 8) -> np.ndarray:
    """σ of Q.12 ``u`` in Q0.16 by table + linear interpolation (``2**k + 1`` entries)."""
    if not 1 <= k <= F_X + SIG_RANGE_LOG2:
        raise ValueError(f"sigmoid table_bits must be in 1..{F_X + SIG_RANGE_LOG2}, not {k!r}")
    table = sigmoid_table(k)
    frac_bits = F_X + SIG_RANGE_LOG2 - k
    a = np.minimum(np.abs(np.asarray(u, np.int64)), (1 << (F_X + SIG_RANGE_LOG2)) - 1)
    i, frac = a >> frac_bits, a & ((1 << frac_bits) - 1)
    lo = table[i]
    s = lo + rshift_round((table[i + 1] - lo) * frac, frac_bits)
    return np.where(np.asarray(u) < 0, (1 << 16) - s, s)


def sigmoid_abs_error(k: int = 8) -> float:
    """Documented max |σ error| of :func:`sigmoid_q16` (interpolation + table + output rounding + input)."""
    h = 2.0**SIG_RANGE_LOG2 / 2**k
    return h * h / 8 * 0.0963 + 1.5 * 2.0**-16 + 2.0**-(F_X + 1) / 4


def integer_silu(q, in_scale: float, out_scale: float, out_format: str, zero_point: int = 0, k: int = 8):
    """SiLU of codes ``q`` at ``in_scale``; output codes."""
    u = to_q12(q, in_scale)
    return requant_codes(u * sigmoid_q16(u, k), 2.0 ** -(F_X + 16) / out_scale, out_format, zero_point)


def integer_swiglu(gate, gate_scale: float, up, up_scale: float, out_scale: float, out_format: str,
                   zero_point: int = 0, k: int = 8):
    """``silu(gate) · up`` of integer codes (``up`` zero point 0); output codes."""
    u = to_q12(gate, gate_scale)
    v = rshift_round(u * sigmoid_q16(u, k), 16)
    return requant_codes(v * np.asarray(up, np.int64), up_scale * 2.0**-F_X / out_scale, out_format, zero_point)


def silu_error_bound(x: np.ndarray, out_scale: float, k: int = 8) -> np.ndarray:
    """Documented error bound (output LSBs) of :func:`integer_silu` at real input ``x``."""
    ax = np.abs(np.asarray(x, np.float64))
    return (ax * sigmoid_abs_error(k) + 2.0 ** -(F_X + 1)) / out_scale + 0.5 + 2.0**-8
