"""Requant shifter golden model: ``out = saturate(round(acc * M * 2**shift) + zero_point)``.

The real rescale factor ``s_in * s_w / s_out`` is approximated by an integer multiplier ``M`` of
``multiplier_bits`` bits and a power-of-two ``shift`` (:func:`quantize_multiplier`).  The datapath has
four named stages, each a vectorised int64 function:

1. **multiply** ``acc * M`` (exact; int64);
2. **rounding shift** by ``-shift`` bits with one of the rounding modes below;
3. **zero-point add**;
4. **saturate** to the output format's range.

Rounding modes (``x = acc * M``, ``r = -shift > 0`` the right shift):

``gemmlowp``
    TFLite's reference ``MultiplyByQuantizedMultiplier``: with ``e = shift + (bits - 1)`` (TFLite's own
    ``shift`` for 32-bit multipliers), ``acc`` is first shifted left by ``max(e, 0)`` (wrapping in 32 bits
    as compiled C does), then ``SaturatingRoundingDoublingHighMul``:
    ``(acc * M + nudge) / 2**(bits-1)`` truncated toward zero with ``nudge = 2**(bits-2)`` for a non-negative
    product and ``1 - 2**(bits-2)`` for a negative one, then ``RoundingDivideByPOT`` by ``max(-e, 0)``:
    ``(y >> n) + (remainder > (mask >> 1) + (y < 0))`` — double rounding, ties away from zero in the
    final shift.
``single``
    One rounding, ties toward +inf: ``(x + 2**(r-1)) >> r`` (TFLite's ``TFLITE_SINGLE_ROUNDING``).
``rne``
    One rounding, ties to even: ``q = x >> r``; ``q + 1`` if ``x - q*2**r > 2**(r-1)`` or it equals
    ``2**(r-1)`` and ``q`` is odd.
``floor``
    Arithmetic shift: ``x >> r``.

For ``shift >= 0`` (no right shift) every mode but ``gemmlowp`` computes ``x << shift`` exactly
(saturated before it could leave int64).  Requant to a float output format (FP8/FP4/MX) takes the exact
value ``acc * M * 2**shift`` (rounded to odd into float64, so the final rounding is a single correct one)
and encodes it with the format's round-to-nearest-even, saturating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.formats import get_format
from hwsim.latency import REQUANT_LATENCY

__all__ = [
    "REQUANT_LATENCY",
    "ROUNDING_MODES",
    "RequantSpec",
    "exact_scaled_value",
    "quantize_multiplier",
    "requant_add_zero_point",
    "requant_multiply",
    "requant_round_shift",
    "requant_saturate",
    "requantize",
]

ROUNDING_MODES = ("gemmlowp", "single", "rne", "floor")



def quantize_multiplier(real, bits: int = 32):
    """Approximate ``real >= 0`` by ``multiplier * 2**shift`` with a ``bits``-bit signed multiplier.

    Mirrors TFLite's ``QuantizeMultiplier`` for ``bits=32``: ``real = q * 2**e`` with q in [0.5, 1);
    ``multiplier = round(q * 2**(bits-1))`` with ties away from zero (``std::round``), so
    ``multiplier`` lies in ``[2**(bits-2), 2**(bits-1))``; if rounding reaches ``2**(bits-1)`` it is halved
    and ``e`` incremented.  ``shift = e - (bits - 1)`` (TFLite's shift is ours + 31).  Like TFLite, a
    factor whose ``e < -(bits-1)`` (below about ``2**-(bits-1)``) flushes to ``(0, 0)``.  Like TFLite's
    gemmlowp (double-rounding) build there is no clamp for large factors: ``e`` may reach ``bits - 1``
    (shift 0; checked against LiteRT's reference kernels); factors ``>= 2**(bits-1)`` are rejected (TFLite's
    left shift would be undefined there).  (The ``shift > 30`` clamp exists only in
    ``TFLITE_SINGLE_ROUNDING`` builds.)

    Parameters
    ----------
    real : float or array_like of float
        Non-negative finite rescale factor(s) (e.g. ``s_in * s_w / s_out``, dimensionless).
    bits : int
        Multiplier width including its (zero) sign bit, 2..32.

    Returns
    -------
    (multiplier, shift) : ints, or int64 arrays shaped like ``real``
    """
    if not isinstance(bits, int) or not 2 <= bits <= 32:
        raise ValueError(f"bits must be an integer in 2..32, not {bits!r}")
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)):
        raise ValueError(f"real must be finite, not {float(r[~np.isfinite(r)].flat[0])!r}")
    if np.any(r < 0):
        raise ValueError(f"real must be non-negative, not {float(r[r < 0].flat[0])!r}")
    if np.any(r >= 2.0 ** (bits - 1)):
        raise ValueError(f"real must be below 2**{bits - 1} for {bits}-bit multipliers, "
                         f"not {float(r[r >= 2.0 ** (bits - 1)].flat[0])!r}")
    q, e = np.frexp(r)
    e = e.astype(np.int64)
    top = 1 << (bits - 1)
    m = np.floor(q * top + 0.5).astype(np.int64)  # q >= 0: ties away from zero
    carry = m == top
    m = np.where(carry, m // 2, m)
    e = e + carry
    zero = (r == 0) | (e < -(bits - 1))
    m = np.where(zero, 0, m)
    shift = np.where(zero, 0, e - (bits - 1))
    if np.any(shift > 0):  # the rounding carry reached 2**(bits-1)
        raise ValueError(f"real must be below 2**{bits - 1} for {bits}-bit multipliers, "
                         f"not {float(r[shift > 0].flat[0])!r}")
    if np.ndim(real) == 0:
        return int(m), int(shift)
    return m, shift


@dataclass(frozen=True, kw_only=True)
class RequantSpec:
    """Parameters of a requant unit (what the RTL generator and the cycle model take).

    Parameters
    ----------
    multiplier_bits : int
        Width of the integer multiplier M (32 for TFLite compatibility, 16 or 8 for cheaper hardware).
    rounding : {"gemmlowp", "single", "rne", "floor"}
        Rounding of the right shift (see the module docstring for formulas).
    out_format : str
        Output format name (``"int8"``, ``"uint8"``, ``"int4"`` ..., or a float format).
    acc_bits : int
        Width of the signed accumulator input (32).
    """

    multiplier_bits: int = 32
    rounding: str = "gemmlowp"
    out_format: str = "int8"
    acc_bits: int = 32

    def __post_init__(self):
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {self.rounding!r}")
        if not isinstance(self.multiplier_bits, int) or not 2 <= self.multiplier_bits <= 32:
            raise ValueError(f"multiplier_bits must be an integer in 2..32, not {self.multiplier_bits!r}")
        if not isinstance(self.acc_bits, int) or not 2 <= self.acc_bits <= 48:
            raise ValueError(f"acc_bits must be an integer in 2..48, not {self.acc_bits!r}")
        get_format(self.out_format)

    @property
    def shift_range(self) -> tuple[int, int]:
        """Supported ``shift`` values (inclusive): right shifts up to ``acc_bits + multiplier_bits - 1``
        (at most 62, the int64 datapath of :func:`requantize`)."""
        return -min(self.acc_bits + self.multiplier_bits - 1, 62), 0

    @property
    def latency(self) -> int:
        """Cycles through the requant unit pipeline (:data:`REQUANT_LATENCY`)."""
        return REQUANT_LATENCY

    def apply(self, acc, multiplier, shift, zero_point=0):
        """:func:`requantize` with this spec's parameters; ``acc`` and ``shift`` checked against the unit's widths."""
        acc_arr, shift_arr = _int_array(acc, "acc"), _int_array(shift, "shift")
        lo, hi = self.shift_range
        if shift_arr.size and (shift_arr.min() < lo or shift_arr.max() > hi):
            bad = shift_arr[(shift_arr < lo) | (shift_arr > hi)].flat[0]
            raise ValueError(f"shift must lie in {lo}..{hi} for this requant unit, not {int(bad)!r}")
        limit = 1 << (self.acc_bits - 1)
        if acc_arr.size and (acc_arr.min() < -limit or acc_arr.max() >= limit):
            bad = acc_arr[(acc_arr < -limit) | (acc_arr >= limit)].flat[0]
            raise ValueError(f"acc must fit the unit's {self.acc_bits}-bit accumulator, not {int(bad)!r}")
        return requantize(acc, multiplier, shift, zero_point, out_format=self.out_format,
                          rounding=self.rounding, multiplier_bits=self.multiplier_bits)


# ---------------------------------------------------------------------- stages
def requant_multiply(acc: np.ndarray, multiplier: np.ndarray) -> np.ndarray:
    """Stage 1: exact product ``acc * M`` (int64)."""
    return acc * multiplier


def _gemmlowp(acc, multiplier, shift, bits: int) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier`` generalised to ``bits``-bit multipliers ``M >= 0``.

    Two exact rewrites keep it to a few int64 passes (both checked against the literal C code in
    tests/core and against LiteRT's reference kernels in tests/external):

    * ``SaturatingRoundingDoublingHighMul(x, M)`` = ``(x*M + nudge) / 2**(b-1)`` truncated toward zero with
      ``nudge = 2**(b-2)`` (``x*M >= 0``) or ``1 - 2**(b-2)`` (``x*M < 0``) equals ``(x*M + 2**(b-2)) >> (b-1)``
      (floor): for ``v = x*M + 2**(b-2)`` and ``D = 2**(b-1)``, ``-floor((D - 1 - v) / D) = floor(v / D)``.
      Its saturating case ``x == M == INT_MIN`` cannot occur since ``M >= 0``.
    * ``RoundingDivideByPOT(y, r)`` (ties away from zero) equals ``(y + 2**(r-1) - [y < 0 and r > 0]) >> r``.
    """
    exponent = shift + (bits - 1)
    x = acc
    if np.any(exponent > 0):
        left = np.clip(exponent, 0, 40)
        x = (((acc << left) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # int32 wrap, as compiled C
    out = np.multiply(x, multiplier)  # in place from here on: this is the hot loop of model runs
    out += 1 << (bits - 2)
    out >>= bits - 1
    right = np.clip(-exponent, 0, 62)
    negative = out < 0
    if not np.all(right > 0):
        negative &= right > 0
    out += (np.int64(1) << right) >> 1
    out -= negative
    out >>= right
    return out


def requant_round_shift(product: np.ndarray, shift: np.ndarray, rounding: str) -> np.ndarray:
    """Stage 2: ``product * 2**shift`` rounded to an integer (``single``, ``rne``, ``floor``)."""
    right = np.clip(-shift, 0, 62)
    left = np.clip(shift, 0, 62)
    limit = np.int64(1) << np.maximum(62 - left, 0)
    up = np.clip(product, -limit, limit) << left
    if rounding == "floor":
        down = product >> right
    elif rounding == "single":
        down = (product + ((np.int64(1) << right) >> 1)) >> right
    elif rounding == "rne":
        quotient = product >> right
        remainder = product - (quotient << right)
        half = (np.int64(1) << right) >> 1
        round_up = (remainder > half) | ((remainder == half) & (half > 0) & (quotient % 2 == 1))
        down = quotient + round_up
    else:
        raise ValueError(f"rounding must be 'single', 'rne' or 'floor' here, not {rounding!r}")
    return np.where(shift >= 0, up, down)


def requant_add_zero_point(values: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """Stage 3: add the output zero point (after rounding)."""
    return values + zero_point


def requant_saturate(values: np.ndarray, out_format) -> np.ndarray:
    """Stage 4: clamp to the integer output format's range."""
    fmt = get_format(out_format)
    return np.clip(values, fmt.lo, fmt.hi)


# ---------------------------------------------------------------------- entry points
_I64 = np.iinfo(np.int64)


def _int_array(x, argument: str) -> np.ndarray:
    """``x`` as int64, refusing values that would wrap (uint64 above 2**63-1, Python ints beyond int64)."""
    try:
        arr = np.asarray(x)
    except OverflowError:
        arr = np.asarray(x, dtype=object)
    if arr.dtype == object and arr.size and all(isinstance(v, int) and not isinstance(v, bool) for v in arr.flat):
        for v in arr.flat:
            if not _I64.min <= v <= _I64.max:
                raise ValueError(f"{argument} must fit int64, not {v!r}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{argument} must be an integer array, not dtype {arr.dtype.name!r}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > _I64.max:
        raise ValueError(f"{argument} must fit int64, not {int(arr.max())!r}")
    return arr.astype(np.int64, copy=False)


def _check_operands(acc, multiplier, shift, bits: int) -> tuple[int, int]:
    """Refuse operands the unit cannot take; returns ``(min, max)`` of ``acc`` (0, 0 when empty)."""
    if np.any(multiplier < 0) or np.any(multiplier >= (1 << (bits - 1))):
        bad = multiplier[(multiplier < 0) | (multiplier >= (1 << (bits - 1)))].flat[0]
        raise ValueError(f"multiplier must lie in 0..2**{bits - 1}-1 for {bits}-bit multipliers, not {int(bad)!r}")
    limit = 1 << (63 - bits)
    lo, hi = (int(acc.min()), int(acc.max())) if acc.size else (0, 0)
    if lo < -limit or hi >= limit:
        bad = acc[(acc < -limit) | (acc >= limit)].flat[0]
        raise ValueError(f"acc must lie within ±2**{63 - bits} so acc*M fits int64, not {int(bad)!r}")
    if np.any(shift < -62) or np.any(shift > 62):
        bad = shift[(shift < -62) | (shift > 62)].flat[0]
        raise ValueError(f"shift must lie in -62..62, not {int(bad)!r}")
    return lo, hi


def requantize(acc, multiplier, shift, zero_point=0, *, out_format="int8", rounding="gemmlowp",
               multiplier_bits: int = 32):
    """Requantize accumulators: ``saturate(round(acc * multiplier * 2**shift) + zero_point)``.

    Parameters
    ----------
    acc : array_like of int
        Accumulator values (int32 range for ``gemmlowp``; ``|acc| < 2**(63 - multiplier_bits)`` otherwise).
    multiplier, shift : int or array_like of int
        From :func:`quantize_multiplier`; scalars (per tensor) or arrays broadcasting against ``acc``
        (per channel).
    zero_point : int or array_like of int
        Output zero point, added after rounding (integer outputs only).
    out_format : str
        Integer format (result: int64 values saturated to its range) or float format (result: raw codes
        of the encoded value; FP8/FP4/FP6) or MX format (result: :class:`hwsim.mx.MXTensor` quantized along
        the last axis).
    rounding : {"gemmlowp", "single", "rne", "floor"}
    multiplier_bits : int
        Width of the multiplier (32 by default).
    """
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")
    if isinstance(multiplier_bits, bool) or not isinstance(multiplier_bits, int) or not 2 <= multiplier_bits <= 62:
        raise ValueError(f"multiplier_bits must be an integer in 2..62, not {multiplier_bits!r}")
    acc = _int_array(acc, "acc")
    m = _int_array(multiplier, "multiplier")
    s = _int_array(shift, "shift")
    zp = _int_array(zero_point, "zero_point")
    acc_lo, acc_hi = _check_operands(acc, m, s, multiplier_bits)
    fmt = get_format(out_format)
    if fmt.kind != "int":
        if np.any(zp != 0):
            raise ValueError(f"zero_point applies to integer outputs only, not {int(zp.flat[0])!r}")
        value = exact_scaled_value(acc, m, s)
        return fmt.quantize(value, axis=-1) if fmt.kind == "mx" else fmt.encode(value, saturate=True)
    if zp.size and (zp.min() < fmt.lo or zp.max() > fmt.hi):
        bad = zp[(zp < fmt.lo) | (zp > fmt.hi)].flat[0]
        raise ValueError(f"zero_point must lie in the {fmt.name} range {fmt.lo}..{fmt.hi}, not {int(bad)!r}")
    if rounding == "gemmlowp":
        if acc_lo < -(1 << 31) or acc_hi >= 1 << 31:
            raise ValueError(f"acc must fit int32 for gemmlowp rounding, not {int(acc.flat[np.argmax(np.abs(acc))])!r}")
        rounded = _gemmlowp(acc, m, s, multiplier_bits)
    else:
        rounded = requant_round_shift(requant_multiply(acc, m), s, rounding)
    rounded = np.asarray(rounded)  # ufuncs on 0-d inputs return scalars; in-place needs an array
    if np.any(zp != 0):
        if np.broadcast_shapes(rounded.shape, zp.shape) == rounded.shape:
            rounded += zp  # stage 3 (requant_add_zero_point), in place on our own array
        else:
            rounded = requant_add_zero_point(rounded, zp)
    out = np.clip(rounded, fmt.lo, fmt.hi, out=rounded)  # stage 4 (requant_saturate), in place
    return out[()] if out.ndim == 0 else out


def exact_scaled_value(acc, multiplier, shift) -> np.ndarray:
    """``acc * M * 2**shift`` as float64, rounded to odd so a later rounding to <= 51 bits is correct."""
    product = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    magnitude = np.abs(product)
    drop = np.maximum(np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int64) + 1 - 53, 0)
    drop = np.minimum(drop, 62)
    kept = magnitude >> drop
    sticky = (magnitude & ((np.int64(1) << drop) - 1)) != 0
    kept = kept | sticky
    value = np.ldexp(kept.astype(np.float64), drop.astype(np.int32))
    return np.ldexp(np.where(product < 0, -value, value), np.asarray(shift, dtype=np.int32))
