"""Fixed-point constant multipliers: the one rescale rule of the integer-only kernels.

A positive real constant ``c`` (a ratio of scales, a scale times ``log2 e``, ...) is held as an unsigned
``M_BITS``-bit mantissa ``m`` in ``[2**(M_BITS-1), 2**M_BITS)`` and a right shift: ``c ≈ m · 2**-shift``
(relative error ``<= 2**-M_BITS``). Applying it to an integer ``x`` is one multiply and one rounding shift
(half away from zero, :func:`hwsim.layernorm.rshift_round`): ``round(x · m · 2**-shift)``. Products stay
below ``2**63`` for ``|x| < 2**(62 - M_BITS)``. Unlike :func:`hwsim.requant.quantize_multiplier` there is no
lower limit on ``c`` (the shift may reach 62), so tiny composite scales (e.g. ``√2 / (2**37 s_out)``)
need no pre-shift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.formats import get_format
from hwsim.layernorm import rshift_round

M_BITS = 16


@dataclass(frozen=True)
class FixedMultiplier:
    """``real ≈ m · 2**-shift`` (``m`` of ``M_BITS`` bits)."""

    m: int
    shift: int


def fixed_multiplier(real: float) -> FixedMultiplier:
    """The ``M_BITS``-bit mantissa and right shift of the positive constant ``real``."""
    real = float(real)
    if not (math.isfinite(real) and real > 0):
        raise ValueError(f"a fixed-point multiplier needs a positive finite constant, not {real!r}")
    frac, exp = math.frexp(real)  # real = frac * 2**exp, frac in [0.5, 1)
    m, shift = round(frac * 2**M_BITS), M_BITS - exp
    if m == 1 << M_BITS:
        m, shift = m >> 1, shift - 1
    if shift > 62:
        raise ValueError(f"the constant {real!r} is below the fixed-point range (shift {shift} > 62)")
    return FixedMultiplier(int(m), int(shift))


def apply_multiplier(x, fm: FixedMultiplier) -> np.ndarray:
    """``round(x · m · 2**-shift)`` (half away from zero), int64."""
    return rshift_round(np.asarray(x, np.int64) * fm.m, fm.shift)


def requant_codes(p, real: float, out_format: str, zero_point: int = 0) -> np.ndarray:
    """``saturate(round(p · real) + zero_point)`` to ``out_format``; returns that format's codes."""
    fmt = get_format(out_format)
    ints = np.clip(apply_multiplier(p, fixed_multiplier(real)) + int(zero_point), fmt.lo, fmt.hi)
    return fmt.int_to_code(ints)
