"""Operand decoders shared by the RTL generators: a raw code -> the golden model's fixed-point view.

Every finite operand of a registered format is ``F * 2**lsb_exponent`` with an integer ``F``
(:attr:`hwsim.formats.ElementFormat.to_fixed`).  The hardware does not build ``F`` at full width for
floats: it keeps a short signed significand ``S`` and a left shift ``E`` with ``F = S << E``, so a
product is ``(S_a * S_b) << (E_a + E_b)`` — a ``(mantissa_bits + 2)``-bit multiplier plus a shifter
instead of a ``fixed_bits``-wide multiplier.  All widths come from the spec:

* ``int`` / ``uint``: ``S = code`` (sign-extended for signed formats), minus an optional runtime zero
  point (unsigned formats), ``E = 0``;
* ``float`` (``exponent_bits``, ``mantissa_bits``, ``bias``, ``inf_nan``): ``S = ±(hidden.mantissa)`` with
  ``hidden = exponent != 0`` and ``E = max(exponent, 1) - 1``; the LSB weight is then
  ``2**(1 - bias - mantissa_bits)`` which must equal the spec's ``lsb_exponent``; NaN/Inf codes give
  ``S = 0`` and raise ``special``;
* ``dint`` (``alpha``): ``S = code << -lsb_exponent`` except codes ``0`` / ``2**(bits-1)`` which are
  ``±alpha * 2**-lsb_exponent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from amaranth.hdl import Const, Mux, signed, unsigned

__all__ = ["DecodedOperand", "OperandDecoder", "has_zero_point", "operand_decoder", "shift_shape",
           "significand_shape"]


def has_zero_point(spec) -> bool:
    """True for formats whose hardware operand takes a runtime zero point (unsigned integers)."""
    return spec.kind == "int" and not spec.signed


@dataclass(frozen=True)
class DecodedOperand:
    """Amaranth values of one decoded operand: ``F = significand << shift``; ``special`` = NaN/Inf."""

    significand: object
    shift: object
    special: object


@dataclass(frozen=True)
class OperandDecoder:
    """Widths of the decoded operand of one format (all derived from the spec).

    Attributes
    ----------
    spec : element format spec
    significand_bits : int
        Width of the signed significand ``S``.
    max_shift : int
        Largest ``E`` (0 for integers and dINT).
    zero_point : bool
        Whether a runtime zero point (``spec.bits`` wide, unsigned) is subtracted.
    """

    spec: object
    significand_bits: int
    max_shift: int
    zero_point: bool

    @property
    def shift_bits(self) -> int:
        return max(self.max_shift.bit_length(), 1)

    def decode(self, code, zero_point=None) -> DecodedOperand:
        """Return the decoded operand of ``code`` (an Amaranth value ``spec.bits`` wide)."""
        spec = self.spec
        if spec.kind == "int":
            value = code.as_signed() if spec.signed else code.as_unsigned()
            if self.zero_point:
                value = value - zero_point.as_unsigned()
            return DecodedOperand(value, Const(0, 1), Const(0, 1))
        if spec.kind == "dint":
            half = 1 << (spec.bits - 1)
            alpha = int(Fraction(spec.alpha) * 2 ** (-spec.lsb_exponent))
            scaled = code.as_signed() << (-spec.lsb_exponent)
            value = Mux(code == 0, alpha, Mux(code == half, -alpha, scaled))
            return DecodedOperand(value, Const(0, 1), Const(0, 1))
        mb, eb = spec.mantissa_bits, spec.exponent_bits
        mantissa, exponent = code[:mb], code[mb:mb + eb]
        sign = code[mb + eb] if spec.signed else Const(0, 1)
        if spec.inf_nan == "ieee":
            special = exponent == (1 << eb) - 1
        elif spec.inf_nan == "fn":
            special = code[:mb + eb] == (1 << (mb + eb)) - 1
        else:
            special = Const(0, 1)
        magnitude = Mux(special, 0, Mux(exponent != 0, (1 << mb) | mantissa, mantissa))
        magnitude = magnitude.as_unsigned()
        significand = Mux(sign, -magnitude, magnitude)
        shift = Mux(exponent == 0, 0, exponent - 1)
        return DecodedOperand(significand, shift, special)


def operand_decoder(spec, *, zero_point: bool | None = None) -> OperandDecoder:
    """Build the :class:`OperandDecoder` for ``spec``; raise ``ValueError`` for formats the PE lacks.

    ``zero_point=None`` enables the runtime zero point for unsigned integer formats only.
    """
    if zero_point is None:
        zero_point = has_zero_point(spec)
    if spec.kind == "int":
        if zero_point and spec.signed:
            raise ValueError(f"runtime zero points are built for unsigned formats only, not {spec.name!r}")
        bits = spec.bits + (1 if not spec.signed else 0)
        return OperandDecoder(spec, bits, 0, bool(zero_point))
    if zero_point:
        raise ValueError(f"zero points apply to integer formats only, not {spec.name!r}")
    if spec.kind == "dint":
        alpha = Fraction(spec.alpha) * 2 ** (-spec.lsb_exponent)
        if alpha.denominator != 1:
            raise ValueError(f"{spec.name}: alpha is not a multiple of the LSB weight, not {spec.alpha!r}")
        return OperandDecoder(spec, spec.fixed_bits, 0, False)
    if spec.kind == "float":
        if not spec.subnormals or not spec.signed:
            raise ValueError(f"the PE supports signed floats with subnormals, not {spec.name!r}")
        if spec.lsb_exponent != 1 - spec.bias - spec.mantissa_bits:
            raise ValueError(f"{spec.name}: LSB weight 2**{spec.lsb_exponent} does not follow from "
                             f"bias and mantissa bits, not {spec.bias!r}")
        top = (1 << spec.exponent_bits) - 1
        max_exponent = top if spec.inf_nan != "ieee" else top - 1
        return OperandDecoder(spec, spec.mantissa_bits + 2, max_exponent - 1, False)
    raise ValueError(f"the PE multiplies int, dint and float formats, not {spec.kind!r} ({spec.name})")


def significand_shape(decoder: OperandDecoder):
    """Amaranth shape of the decoded significand register."""
    return signed(decoder.significand_bits)


def shift_shape(decoder: OperandDecoder):
    """Amaranth shape of the decoded shift register."""
    return unsigned(decoder.shift_bits)

