"""Multiply-accumulate processing element (one MAC lane), generated from hwsim format specs.

The PE implements the golden model's exact accumulation rule (:mod:`hwsim.gemm`): each operand is
decoded to its fixed-point integer ``F`` (value ``F * 2**lsb_exponent``), the product ``F_a * F_b`` is
formed exactly, and the accumulator is a signed register whose LSB weighs
``2**(a.lsb_exponent + b.lsb_exponent)``.  Integer accumulators wrap or saturate after every addition as
:class:`hwsim.gemm.AccumulatorSpec` says; floating-point products accumulate exactly (pick the width with
:func:`hwsim.gemm.accumulator_bits`).  NaN/Inf operands contribute 0 and raise the sticky ``special``
flag (the golden :func:`hwsim.gemm.gemm_fixed` treats them the same way).

Streams
-------
``i`` payload (LSB first): ``a``, ``b`` (raw codes), ``a_zp``/``b_zp`` (unsigned formats only, runtime
zero points, value ``= code - zp``), ``first`` (start a new sum: the accumulator restarts from this
product), ``last`` (emit the accumulator after this product).
``o`` payload: ``acc`` (signed, ``acc_bits``), ``special`` (a NaN/Inf operand was seen since ``first``),
``overflow`` (an addition since ``first`` left the register range).

Pipeline: decode -> multiply/align -> accumulate; :attr:`PE.latency` ``= 3`` cycles from the input
handshake of a ``last`` element to ``o.valid``.  Every stage advances when ``~o.valid | o.ready``
(the whole pipeline stalls under back-pressure; ``i.ready`` is that enable).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.formats import get_format
from hwsim.gemm import AccumulatorSpec
from hwsim.latency import PE_LATENCY

from .operands import operand_decoder, shift_shape, significand_shape

__all__ = ["PE", "accumulate", "aligned_product"]


def aligned_product(sa, sb, ea, eb):
    """``F_a * F_b`` in accumulator LSBs from decoded operands: ``(S_a * S_b) << (E_a + E_b)``."""
    return (sa * sb) << (ea + eb)


def accumulate(m: Module, base, product, acc_bits: int, overflow: str):
    """Combinational accumulator step shared by every MAC: ``base + product`` limited to ``acc_bits``.

    Returns ``(result, out_of_range)``: the register's next value (two's-complement wrap or saturation
    at ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]``, :class:`hwsim.gemm.AccumulatorSpec`) and whether the
    exact sum left that range.
    """
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    exact = Signal(signed(max(acc_bits, product.shape().width) + 1))
    result = Signal(signed(acc_bits))
    m.d.comb += exact.eq(base + product)
    out_of_range = (exact < lo) | (exact > hi)
    if overflow == "saturate":
        m.d.comb += result.eq(Mux(exact < lo, lo, Mux(exact > hi, hi, exact)))
    else:
        m.d.comb += result.eq(exact)
    return result, out_of_range


def _accumulator_spec(accumulator) -> tuple[int, str]:
    if isinstance(accumulator, AccumulatorSpec):
        return accumulator.bits, accumulator.overflow
    if isinstance(accumulator, int) and not isinstance(accumulator, bool) and accumulator >= 2:
        return accumulator, "wrap"
    raise TypeError(f"accumulator must be an AccumulatorSpec or a bit width >= 2, not {accumulator!r}")


class PE(wiring.Component):
    """One MAC lane: ``acc = (first ? 0 : acc) + F_a * F_b`` with the golden model's fixed-point rule.

    Parameters
    ----------
    a_format, b_format : str or element format spec
        Operand formats (``int``/``uint``, ``dint`` or ``float`` kinds), by name or spec.
    accumulator : AccumulatorSpec or int
        Register width and overflow rule; an ``int`` is a wrapping register of that many bits (for
        exact floating-point accumulators wider than 64 bits).

    Attributes
    ----------
    latency : int
        Cycles from accepting a ``last`` element to ``o.valid`` (3).
    product_bits, acc_bits : int
        Width of the aligned product and of the accumulator.
    lsb_exponent : int
        Accumulator LSB weight is ``2**lsb_exponent``.
    """

    latency = PE_LATENCY

    def __init__(self, a_format, b_format, accumulator):
        a, b = get_format(a_format), get_format(b_format)
        acc_bits, overflow = _accumulator_spec(accumulator)
        self._a_dec = operand_decoder(a)
        self._b_dec = operand_decoder(b)
        self._a, self._b = a, b
        self._acc_bits, self._overflow = acc_bits, overflow
        self._product_bits = (self._a_dec.significand_bits + self._b_dec.significand_bits
                              + self._a_dec.max_shift + self._b_dec.max_shift)
        fields = {"a": a.bits, "b": b.bits}
        if self._a_dec.zero_point:
            fields["a_zp"] = a.bits
        if self._b_dec.zero_point:
            fields["b_zp"] = b.bits
        fields.update(first=1, last=1)
        self._in_layout = data.StructLayout(fields)
        self._out_layout = data.StructLayout({"acc": signed(acc_bits), "special": 1, "overflow": 1})
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    @property
    def a_format(self):
        return self._a

    @property
    def b_format(self):
        return self._b

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def overflow_mode(self) -> str:
        return self._overflow

    @property
    def product_bits(self) -> int:
        return self._product_bits

    @property
    def lsb_exponent(self) -> int:
        return self._a.lsb_exponent + self._b.lsb_exponent

    @property
    def in_layout(self) -> data.StructLayout:
        return self._in_layout

    @property
    def out_layout(self) -> data.StructLayout:
        return self._out_layout

    def describe(self) -> dict:
        """JSON-ready parameters (for the generator's manifest)."""
        return {"a_format": self._a.name, "b_format": self._b.name, "acc_bits": self._acc_bits,
                "overflow": self._overflow, "product_bits": self._product_bits,
                "lsb_exponent": self.lsb_exponent, "latency": self.latency}

    def _aligned_product(self, sa, sb, ea, eb):
        """Stage 2 datapath: ``(S_a * S_b) << (E_a + E_b)`` = ``F_a * F_b`` in accumulator LSBs."""
        return aligned_product(sa, sb, ea, eb)

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        enable = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(enable)

        # Stage 1: decode both operands.
        da = self._a_dec.decode(p.a, getattr(p, "a_zp", None) if self._a_dec.zero_point else None)
        db = self._b_dec.decode(p.b, getattr(p, "b_zp", None) if self._b_dec.zero_point else None)
        s1_valid = Signal()
        s1_sa = Signal(significand_shape(self._a_dec))
        s1_sb = Signal(significand_shape(self._b_dec))
        s1_ea = Signal(shift_shape(self._a_dec))
        s1_eb = Signal(shift_shape(self._b_dec))
        s1_special, s1_first, s1_last = Signal(), Signal(), Signal()
        with m.If(enable):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_sa.eq(da.significand), s1_sb.eq(db.significand),
                         s1_ea.eq(da.shift), s1_eb.eq(db.shift), s1_special.eq(da.special | db.special),
                         s1_first.eq(p.first), s1_last.eq(p.last)]

        # Stage 2: multiply significands and align the product to the accumulator LSB.
        s2_valid = Signal()
        s2_product = Signal(signed(self._product_bits))
        s2_special, s2_first, s2_last = Signal(), Signal(), Signal()
        with m.If(enable):
            m.d.sync += [s2_valid.eq(s1_valid), s2_product.eq(self._aligned_product(s1_sa, s1_sb, s1_ea, s1_eb)),
                         s2_special.eq(s1_special), s2_first.eq(s1_first), s2_last.eq(s1_last)]

        # Stage 3: accumulate with the register's overflow rule.
        acc = Signal(signed(self._acc_bits))
        special, overflowed, out_valid = Signal(), Signal(), Signal()
        base = Signal(signed(self._acc_bits))
        m.d.comb += base.eq(acc)
        with m.If(s2_first):
            m.d.comb += base.eq(0)
        result, out_of_range = accumulate(m, base, s2_product, self._acc_bits, self._overflow)
        with m.If(enable):
            m.d.sync += out_valid.eq(s2_valid & s2_last)
            with m.If(s2_valid):
                m.d.sync += [acc.eq(result), special.eq(s2_special | (special & ~s2_first)),
                             overflowed.eq(out_of_range | (overflowed & ~s2_first))]
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.acc.eq(acc),
                     self.o.payload.special.eq(special), self.o.payload.overflow.eq(overflowed)]
        return m
