"""Requant unit: int accumulator stream -> saturated integer output codes, generated from a RequantSpec.

Implements :func:`hwsim.requant.requantize` for integer output formats with the spec's rounding mode
fixed at generation time.  The multiplier ``M``, the ``shift`` and the output zero point arrive with every
accumulator (per-channel values travel with the data).  The four named stages of the golden model map to
three pipeline registers:

1. **multiply** — ``acc * M`` (for ``gemmlowp``: ``acc`` first shifted left by
   ``max(shift + bits - 1, 0)`` with 32-bit wrap, as TFLite's reference does);
2. **rounding shift** — right shift by ``-shift`` (``gemmlowp``: the rounding doubling high multiply by
   ``2**(bits-1)`` then ``RoundingDivideByPOT``), rounding per ``spec.rounding``;
3. **zero-point add** and **saturate** to the output format's range.

``latency`` = 3 cycles from the input handshake to ``o.valid``; the pipeline stalls as a whole under
back-pressure (``i.ready = ~o.valid | o.ready``).

Ports
-----
``i`` payload (LSB first): ``acc`` (signed ``acc_bits``), ``multiplier`` (unsigned ``multiplier_bits - 1``:
the golden model's multipliers are non-negative), ``shift`` (signed, ``spec.shift_range``),
``zero_point`` (signed ``out_bits + 1``).  ``o`` payload: ``code`` (``out_bits``, the raw output code).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.formats import get_format
from hwsim.requant import REQUANT_LATENCY, RequantSpec

__all__ = ["Requant"]


class Requant(wiring.Component):
    """Pipelined requant unit for one :class:`hwsim.requant.RequantSpec` (integer output formats).

    Parameters
    ----------
    spec : RequantSpec
        Multiplier width, rounding mode, output format and accumulator width.

    Attributes
    ----------
    latency : int
        Cycles from the input handshake to ``o.valid`` (3).
    """

    latency = REQUANT_LATENCY

    def __init__(self, spec: RequantSpec):
        if not isinstance(spec, RequantSpec):
            raise TypeError(f"spec must be a hwsim.requant.RequantSpec, not {spec!r}")
        out = get_format(spec.out_format)
        if out.kind != "int":
            raise ValueError(f"the requant unit saturates to integer formats, not {spec.out_format!r}")
        if spec.rounding == "gemmlowp" and spec.acc_bits != 32:
            raise ValueError(f"gemmlowp rounding needs a 32-bit accumulator, not {spec.acc_bits!r}")
        self._spec, self._out = spec, out
        lo, _ = spec.shift_range
        self._shift_bits = (-lo).bit_length() + 1
        self._in_layout = data.StructLayout({
            "acc": signed(spec.acc_bits),
            "multiplier": unsigned(spec.multiplier_bits - 1),
            "shift": signed(self._shift_bits),
            "zero_point": signed(out.bits + 1),
        })
        self._out_layout = data.StructLayout({"code": unsigned(out.bits)})
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    @property
    def spec(self) -> RequantSpec:
        return self._spec

    @property
    def in_layout(self) -> data.StructLayout:
        return self._in_layout

    @property
    def out_layout(self) -> data.StructLayout:
        return self._out_layout

    def describe(self) -> dict:
        """JSON-ready parameters (for the generator's manifest)."""
        s = self._spec
        return {"multiplier_bits": s.multiplier_bits, "rounding": s.rounding, "out_format": s.out_format,
                "acc_bits": s.acc_bits, "shift_range": list(s.shift_range), "latency": self.latency}

    # ------------------------------------------------------------------ stages
    def _multiply(self, m, p, enable):
        """Stage 1: product and right-shift amount (registered)."""
        s = self._spec
        bits = s.multiplier_bits
        # |acc * M| < 2**(acc_bits - 1) * 2**(bits - 1): acc_bits + bits - 1 signed bits (63 for 32 x 32,
        # so the datapath stays within 64-bit words)
        product = Signal(signed(s.acc_bits + bits - 1))
        right = Signal(unsigned(self._shift_bits))
        if s.rounding == "gemmlowp":
            exponent = p.shift + (bits - 1)
            left = Mux(exponent > 0, exponent, 0)[:(bits - 1).bit_length()]  # 0 .. bits-1 in range
            wrapped = Signal(signed(32))
            m.d.comb += wrapped.eq(p.acc << left)  # keeps the low 32 bits: int32 wrap
            with m.If(enable):
                m.d.sync += [product.eq(wrapped * p.multiplier),
                             right.eq(Mux(exponent < 0, -exponent, 0))]
        else:
            with m.If(enable):
                m.d.sync += [product.eq(p.acc * p.multiplier), right.eq(Mux(p.shift < 0, -p.shift, 0))]
        return product, right

    def _round_shift(self, m, product, right):
        """Stage 2 (combinational part): ``product * 2**-right`` rounded per the spec."""
        s = self._spec
        value = product
        if s.rounding == "gemmlowp":
            half = 1 << (s.multiplier_bits - 2)
            high = Signal(signed(product.shape().width - s.multiplier_bits + 2))
            m.d.comb += high.eq((product + half) >> (s.multiplier_bits - 1))  # SRDHM, ties to +inf
            value = high
        width = value.shape().width
        quotient = Signal(signed(width))
        mask = Signal(unsigned(width))
        remainder = Signal(unsigned(width))
        doubled = Signal(signed(width + 1))
        ones = Const((1 << width) - 1, width)
        gap = Signal(range(width + 1))  # mask = ones >> (width - right): no wide left shift
        m.d.comb += gap.eq(Mux(right >= width, 0, width - right))
        m.d.comb += [quotient.eq(value >> right), mask.eq(ones >> gap),
                     remainder.eq(value.as_unsigned() & mask), doubled.eq(Cat(Const(0, 1), value))]
        half_bit = (doubled >> right)[0]
        sticky = (remainder & (mask >> 1)) != 0
        negative = value[-1]
        if s.rounding == "floor":
            round_up = Const(0, 1)
        elif s.rounding == "single":
            round_up = half_bit
        elif s.rounding == "rne":
            round_up = half_bit & (sticky | quotient[0])
        else:  # gemmlowp RoundingDivideByPOT: ties away from zero
            round_up = half_bit & (sticky | ~negative)
        return quotient + round_up

    def elaborate(self, platform):
        m = Module()
        enable = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(enable)
        p = self.i.payload

        s1_valid = Signal()
        s1_zp = Signal.like(p.zero_point)
        product, right = self._multiply(m, p, enable)
        with m.If(enable):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_zp.eq(p.zero_point)]

        rounded_comb = self._round_shift(m, product, right)
        s2_valid = Signal()
        s2_zp = Signal.like(s1_zp)
        rounded = Signal(signed(rounded_comb.shape().width))
        with m.If(enable):
            m.d.sync += [s2_valid.eq(s1_valid), s2_zp.eq(s1_zp), rounded.eq(rounded_comb)]

        lo, hi = self._out.lo, self._out.hi
        # rounded has one bit of headroom over the product (|rounded| <= 2**(width-2)), so adding the
        # much narrower zero point cannot overflow its width
        biased = Signal(signed(max(rounded.shape().width, s2_zp.shape().width + 1)))
        m.d.comb += biased.eq(rounded + s2_zp)
        code = Signal(unsigned(self._out.bits))
        out_valid = Signal()
        with m.If(enable):
            m.d.sync += out_valid.eq(s2_valid)
            with m.If(biased < lo):
                m.d.sync += code.eq(lo)
            with m.Elif(biased > hi):
                m.d.sync += code.eq(hi)
            with m.Else():
                m.d.sync += code.eq(biased)
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.code.eq(code)]
        return m
