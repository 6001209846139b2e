"""Scalar references and shared settings for tests/core.

Everything here is written from the specifications (TFLite reference kernels, OCP MX v1.0, the dINT
definition in hwsim.formats' docstring), with Python ints and ``fractions.Fraction`` and one element at
a time; none of it calls the hwsim implementation under test.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import HealthCheck, settings

#: Derandomized hypothesis settings (fixed example sequence, no database, modest budget).
HYP = settings(derandomize=True, database=None, deadline=None, max_examples=150,
               suppress_health_check=[HealthCheck.too_slow])

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


# ---------------------------------------------------------------------- generic rounding
def round_half_even(q: Fraction) -> int:
    """Nearest integer to q, ties to even."""
    fl = math.floor(q)
    rem = q - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        return fl + 1
    return fl


def round_half_up(q: Fraction) -> int:
    """Nearest integer, ties toward +inf."""
    return math.floor(q + Fraction(1, 2))


def round_half_away(q: Fraction) -> int:
    """Nearest integer, ties away from zero."""
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q)) if q != 0 else 0


# ---------------------------------------------------------------------- float formats (bitwise)
def float_code_value(code: int, e_bits: int, m_bits: int, bias: int, inf_nan: str, signed: bool = True):
    """Value of a float code from its fields (Fraction, or 'nan'/'inf'/'-inf')."""
    sign = (code >> (e_bits + m_bits)) & 1 if signed else 0
    exp = (code >> m_bits) & ((1 << e_bits) - 1)
    man = code & ((1 << m_bits) - 1)
    top = (1 << e_bits) - 1
    if inf_nan == "ieee" and exp == top:
        return "nan" if man else ("-inf" if sign else "inf")
    if inf_nan == "fn" and exp == top and man == (1 << m_bits) - 1:
        return "nan"
    if exp == 0 and m_bits > 0:
        mag = Fraction(man, 1 << m_bits) * Fraction(2) ** (1 - bias)
    else:
        mag = (1 + Fraction(man, 1 << m_bits)) * Fraction(2) ** (exp - bias)
    return -mag if sign else mag


# ---------------------------------------------------------------------- dINT
def dint_levels(bits: int, alpha: Fraction) -> dict[int, Fraction]:
    """code -> value: two's complement, except code 0 -> +alpha and code 2**(b-1) -> -alpha."""
    half = 1 << (bits - 1)
    out = {}
    for code in range(1 << bits):
        if code == 0:
            out[code] = alpha
        elif code == half:
            out[code] = -alpha
        else:
            out[code] = Fraction(code - (1 << bits) if code >= half else code)
    return out


def dint_encode_scalar(x: float, bits: int, alpha: Fraction) -> int:
    """Nearest level; ties to the level with the even code; saturating; 0.0 -> +alpha, -0.0 -> -alpha."""
    levels = dint_levels(bits, alpha)
    if x == 0:
        return (1 << (bits - 1)) if math.copysign(1.0, x) < 0 else 0
    xf = Fraction(x)
    best = None
    for code, v in levels.items():
        d = abs(xf - v)
        if best is None or d < best[0] or (d == best[0] and code % 2 == 0 and best[1] % 2 == 1):
            best = (d, code)
    return best[1]


# ---------------------------------------------------------------------- TFLite requant (int32 semantics)
def _wrap32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul for int32 a, b."""
    overflow = a == b == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = _wrap32(_c_div(ab_64 + nudge, 1 << 31))
    return INT32_MAX if overflow else ab_x2_high32


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT for int32 x (arithmetic shift, ties away from zero)."""
    assert 0 <= exponent <= 31
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def tflite_multiply_by_quantized_multiplier(x: int, quantized_multiplier: int, shift: int) -> int:
    """TFLite reference MultiplyByQuantizedMultiplier (non single-rounding build); TFLite shift."""
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap32(x * (1 << left_shift)), quantized_multiplier),
        right_shift)


def tflite_quantize_multiplier(double_multiplier: float, single_rounding: bool = False) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: returns (quantized_multiplier, tflite_shift).

    The ``shift > 30`` clamp exists only in ``TFLITE_SINGLE_ROUNDING`` builds; the default (gemmlowp,
    double-rounding) build lets the shift reach 31 for factors in [2**30, 2**31)."""
    if double_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(double_multiplier)
    # std::round: half away from zero
    q_fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q >= 0 else -1)
    # exactness: q * 2**31 is exact in double, +0.5 may round only for values >= 2**52: not the case
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if single_rounding and shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return q_fixed, shift
