"""Integer rotary position embedding (RoPE) with R-bit sin/cos tables.

Tables (offline, stored in SRAM): for position ``t`` and pair ``i`` of a head of dimension ``d``,
``θ = t · base**(-2i/d)``, ``C[t, i] = round(cos θ · K)`` and ``S[t, i] = round(sin θ · K)`` with
``K = 2**(R-1) - 1`` (signed R-bit codes, symmetric so ±1 is exact; R8: K = 127, R16: K = 32767). Size:
``2 · positions · d/2 · R`` bits.

Rotation of adjacent pairs ``(x0, x1) = (q[2i], q[2i+1])`` (the GGUF/llama.cpp layout of
:func:`hwsim.float_executor.rope`), integer codes with zero point 0 at scale ``s_in``::

    y0 = x0 C - x1 S,  y1 = x0 S + x1 C            width W_in + R + 1 (int8 x R16: 25 bits)
    out = requant(y, s_in / (K s_out))            16-bit multiplier (hwsim.fixed_point), output format

Error vs the float rotation of the same input (output LSBs): the table rounding ``0.5/K`` per entry,
so ``|y - y_float| <= 0.5 + |x|_pair · (2 · 0.5 / K) / s_out + 2**-15 |y| / s_out``, with ``|x|_pair``
the larger magnitude of the pair (:func:`rope_error_bound`).
"""

from __future__ import annotations

import numpy as np

from hwsim.fixed_point import requant_codes

ROPE_BITS = (8, 16)


def rope_tables(positions: int, dim: int, base: float, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S)``: int64 ``[positions, dim/2]`` R-bit cos/sin codes at scale ``1 / (2**(bits-1) - 1)``."""
    if bits not in ROPE_BITS:
        raise ValueError(f"rope table bits must be one of {ROPE_BITS}, not {bits!r}")
    if dim % 2:
        raise ValueError(f"rope head dimension must be even, not {dim!r}")
    k = 2 ** (bits - 1) - 1
    inv = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    ang = np.arange(positions, dtype=np.float64)[:, None] * inv[None, :]
    return np.round(np.cos(ang) * k).astype(np.int64), np.round(np.sin(ang) * k).astype(np.int64)


def integer_rope(q: np.ndarray, in_scale: float, out_scale: float, out_format: str, *, base: float,
                 bits: int = 16, zero_point: int = 0) -> np.ndarray:
    """Rotate integer codes ``q`` (..., seq, dim) at ``in_scale``; output codes of ``out_format``."""
    q = np.asarray(q, np.int64)
    seq, dim = q.shape[-2], q.shape[-1]
    cos, sin = rope_tables(seq, dim, base, bits)
    x0, x1 = q[..., 0::2], q[..., 1::2]
    y = np.empty_like(q)
    y[..., 0::2] = x0 * cos - x1 * sin
    y[..., 1::2] = x0 * sin + x1 * cos
    k = 2 ** (bits - 1) - 1
    return requant_codes(y, in_scale / (k * out_scale), out_format, zero_point)


def rope_error_bound(x_pair_max: np.ndarray, y_abs: np.ndarray, out_scale: float, bits: int) -> np.ndarray:
    """Documented error bound (output LSBs) for pair magnitude ``x_pair_max`` and result ``|y|`` (reals)."""
    k = 2 ** (bits - 1) - 1
    return 0.5 + (np.asarray(x_pair_max) / k + np.asarray(y_abs) * 2.0**-15) / out_scale
