"""Runtime-switchable multi-precision MAC lane (e.g. int8 / 2 x int4 / fp8 / 2 x fp4 in one 8-bit lane).

Each *mode* is an operand format pair ``(a_format, b_format)`` of equal width ``bits`` packed
``word_bits // bits`` times into the lane's ``word_bits``-wide operand words; in a mode with ``n``
sub-elements one input adds the ``n``-term dot product ``sum_j a_j * b_j`` of the packed elements
(element ``j`` in bits ``[j*bits, (j+1)*bits)``).  The ``mode`` field travels with the data and may
change at every ``first``.

Every mode follows the golden model's exact rule (:mod:`hwsim.gemm`): operands are decoded to their
fixed-point integers (:mod:`hwsim.rtl.operands`), products are exact, and the one accumulator register
has the finest LSB over all modes, ``2**lsb_exponent`` with ``lsb_exponent = min(a.lsb + b.lsb)``; a mode
whose products have a coarser LSB shifts them left by the difference (:meth:`MultiPrecisionPE.alignment`).
The register is wide enough for ``k`` inputs in every mode (:func:`hwsim.gemm.accumulator_bits`), so
it never overflows within ``k`` inputs (it wraps beyond).

This lane decodes and multiplies every mode in parallel and selects one result: the area cost of
runtime flexibility over single-format PEs (no multiplier sharing).  Streams, ``first``/``last``,
``special`` and the 3-cycle ``latency`` are as in :class:`hwsim.rtl.pe.PE`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.formats import get_format
from hwsim.gemm import accumulator_bits
from hwsim.latency import PE_LATENCY

from .operands import operand_decoder, shift_shape, significand_shape

__all__ = ["MultiPrecisionPE"]


class MultiPrecisionPE(wiring.Component):
    """MAC lane switching at run time between the operand format pairs in ``modes``.

    Parameters
    ----------
    modes : sequence of (a_format, b_format)
        Format pairs (signed int, dint or float; equal widths dividing ``word_bits``); the index is the
        runtime ``mode`` value.
    word_bits : int
        Operand word width (8).
    k : int
        Inputs the accumulator holds exactly in any mode (4096).
    """

    latency = PE_LATENCY

    def __init__(self, modes, *, word_bits: int = 8, k: int = 4096):
        if not modes:
            raise ValueError(f"modes must name at least one format pair, not {modes!r}")
        self._modes = []
        for a_name, b_name in modes:
            a, b = get_format(a_name), get_format(b_name)
            if a.bits != b.bits or word_bits % a.bits:
                raise ValueError(f"mode operands must have equal widths dividing {word_bits} bits, not "
                                 f"{(a.name, b.name)!r}")
            dec_a, dec_b = operand_decoder(a, zero_point=False), operand_decoder(b, zero_point=False)
            self._modes.append((a, b, word_bits // a.bits, dec_a, dec_b))
        self._word_bits, self._k = word_bits, k
        self._lsb = min(a.lsb_exponent + b.lsb_exponent for a, b, *_ in self._modes)
        self._acc_bits = max(accumulator_bits(a, b, k * count) + self.alignment(index)
                             for index, (a, b, count, *_) in enumerate(self._modes))
        self._in_layout = data.StructLayout({"a": word_bits, "b": word_bits,
                                             "mode": max(1, (len(modes) - 1).bit_length()), "first": 1, "last": 1})
        self._out_layout = data.StructLayout({"acc": signed(self._acc_bits), "special": 1, "overflow": 1})
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    @property
    def modes(self) -> list[tuple[str, str, int]]:
        """``(a_format, b_format, elements per word)`` by mode index."""
        return [(a.name, b.name, count) for a, b, count, *_ in self._modes]

    def alignment(self, mode: int) -> int:
        """Left shift from mode ``mode``'s product LSB to the accumulator LSB."""
        a, b = self._modes[mode][:2]
        return a.lsb_exponent + b.lsb_exponent - self._lsb

    @property
    def lsb_exponent(self) -> int:
        return self._lsb

    @property
    def acc_bits(self) -> int:
        return self._acc_bits

    @property
    def in_layout(self) -> data.StructLayout:
        return self._in_layout

    @property
    def out_layout(self) -> data.StructLayout:
        return self._out_layout

    def describe(self) -> dict:
        """JSON-ready parameters (for the generator's manifest)."""
        return {"modes": [list(mode) for mode in self.modes], "word_bits": self._word_bits, "k": self._k,
                "acc_bits": self._acc_bits, "lsb_exponent": self._lsb,
                "alignment": [self.alignment(i) for i in range(len(self._modes))], "latency": self.latency}

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        enable = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(enable)

        # Stage 1: decode the packed elements of every mode.
        s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
        s1_mode = Signal.like(p.mode)
        decoded = []  # per mode: list of (sa, sb, ea, eb) registers and a special register
        with m.If(enable):
            m.d.sync += [s1_valid.eq(self.i.valid), s1_first.eq(p.first), s1_last.eq(p.last), s1_mode.eq(p.mode)]
        for index, (a, _b, count, dec_a, dec_b) in enumerate(self._modes):
            elements, special = [], Signal(name=f"m{index}_special")
            flags = []
            for j in range(count):
                lo, hi = j * a.bits, (j + 1) * a.bits
                da, db = dec_a.decode(p.a[lo:hi]), dec_b.decode(p.b[lo:hi])
                regs = (Signal(significand_shape(dec_a), name=f"m{index}_sa{j}"),
                        Signal(significand_shape(dec_b), name=f"m{index}_sb{j}"),
                        Signal(shift_shape(dec_a), name=f"m{index}_ea{j}"),
                        Signal(shift_shape(dec_b), name=f"m{index}_eb{j}"))
                with m.If(enable):
                    m.d.sync += [regs[0].eq(da.significand), regs[1].eq(db.significand), regs[2].eq(da.shift),
                                 regs[3].eq(db.shift)]
                elements.append(regs)
                flags += [da.special, db.special]
            with m.If(enable):
                m.d.sync += special.eq(sum_or(flags))
            decoded.append((elements, special))

        # Stage 2: per-mode dot products aligned to the accumulator LSB, selected by the mode.
        product_bits = self._acc_bits
        s2_valid, s2_first, s2_last, s2_special = Signal(), Signal(), Signal(), Signal()
        s2_product = Signal(signed(product_bits))
        selected, selected_special = 0, 0
        for index, (elements, special) in enumerate(decoded):
            terms = [(sa * sb) << (ea + eb) for sa, sb, ea, eb in elements]
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            aligned = total << self.alignment(index)
            selected = aligned if index == 0 else Mux(s1_mode == index, aligned, selected)
            selected_special = special if index == 0 else Mux(s1_mode == index, special, selected_special)
        with m.If(enable):
            m.d.sync += [s2_valid.eq(s1_valid), s2_first.eq(s1_first), s2_last.eq(s1_last),
                         s2_product.eq(selected), s2_special.eq(selected_special)]

        # Stage 3: exact accumulation (wraps beyond k inputs).
        acc = Signal(signed(self._acc_bits))
        special, overflowed, out_valid = Signal(), Signal(), Signal()
        lo, hi = -(1 << (self._acc_bits - 1)), (1 << (self._acc_bits - 1)) - 1
        base = Signal(signed(self._acc_bits))
        exact = Signal(signed(self._acc_bits + 1))
        m.d.comb += [base.eq(Mux(s2_first, 0, acc)), exact.eq(base + s2_product)]
        with m.If(enable):
            m.d.sync += out_valid.eq(s2_valid & s2_last)
            with m.If(s2_valid):
                m.d.sync += [acc.eq(exact), special.eq(s2_special | (special & ~s2_first)),
                             overflowed.eq((exact < lo) | (exact > hi) | (overflowed & ~s2_first))]
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.acc.eq(acc),
                     self.o.payload.special.eq(special), self.o.payload.overflow.eq(overflowed)]
        return m


def sum_or(values):
    """OR of a list of 1-bit values."""
    result = values[0]
    for value in values[1:]:
        result = result | value
    return result
