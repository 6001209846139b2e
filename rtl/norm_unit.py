# amaranth: UnusedElaboratable=no
"""Integer LayerNorm / RMSNorm unit: the datapath of :func:`hwsim.layernorm.integer_norm` in hardware.

One row of ``n`` integers ``q`` is streamed ``P`` times (LayerNorm ``P = 3``, RMSNorm ``P = 2``: the
unit reads the row from SRAM once per pass, as the cycle model assumes), ``lanes`` elements per beat:

1. pass 1: ``x = clip(rshift_round(q, p))`` (pre-shift ``p``, saturation to ``x_bits``);
   LayerNorm ``S1 += sum x``, RMSNorm ``S2 += sum x^2``;
2. LayerNorm only: ``mu = round(S1 / n)`` (half away from zero: one divide by ``2n``), then pass 2
   ``S2 += sum (x - mu)^2``;
3. ``sigma = isqrt(S2)``: start ``2**ceil(bits(S2)/2)``, ``newton_iterations`` steps
   ``x <- min(x, (x + S2 // x) // 2)`` (the golden model's loop, run a fixed number of times: equal
   whenever the row needs at most that many), one divide each;
4. ``r = (C * 2**F_R + sigma // 2) // sigma`` (0 when ``sigma = 0``), ``C = round(sqrt(n) 2**16)``;
5. last pass: ``z = rshift_round((x - mu) * r, 16 + F_R - F_Z)``, sign of γ, then two
   :class:`hwsim.rtl.requant_unit.Requant` units per lane: γ/β to int16 at the stage scale
   (per-channel multiplier, shift, zero point), then the fine requant to the output format.

All divides share one restoring divider that takes exactly ``div_latency`` cycles (it retires
``ceil(width / div_latency)`` quotient bits per cycle).  Timing (steady streams, from the first input
beat of a row to its last output beat; :func:`hwsim.latency.int_norm_cycles`)::

    P * ceil(n / lanes) + D * div_latency + INT_NORM_PIPELINE,   D = newton_iterations + 1 (+ 1 LayerNorm)

with ``INT_NORM_PIPELINE = 2 * REQUANT_LATENCY - 1``; the next row's first pass starts right after a
row's last beat (initiation interval ``P * ceil(n / lanes) + D * div_latency``).

Streams
-------
``i`` payload (LSB first): ``q`` (``lanes`` x ``in_bits`` signed), ``multiplier`` (``lanes`` x
``multiplier_bits - 1``), ``shift`` (``lanes`` x shift field of the requant unit, signed),
``zero_point`` (``lanes`` x 17 signed, the int16 stage), ``negative`` (``lanes`` bits: γ < 0),
``pre_shift``, ``fine_multiplier``, ``fine_shift``, ``out_zero_point`` (row constants of
:class:`hwsim.layernorm.IntNormParams`).  Per-channel fields are read in the last pass only.
``o`` payload: ``code`` (``lanes`` x output bits; lanes past ``n`` in the last beat are don't-care).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.formats import get_format
from hwsim.latency import int_norm_cycles, int_norm_divides
from hwsim.layernorm import C_FRAC, F_R, F_Z
from hwsim.requant import RequantSpec

from .requant_unit import Requant

__all__ = ["IntNormUnit", "RestoringDivider"]


class RestoringDivider:
    """Unsigned ``num // den`` in exactly ``cycles`` cycles (``ceil(num_bits / cycles)`` bits per cycle).

    ``start`` (combinational) begins a divide on the operands of that cycle, ``enable`` advances it;
    ``quotient`` is valid from the cycle ``cycles`` enabled cycles later and holds while ``enable`` is
    low.  ``den = 0`` gives all ones (callers mask it).
    """

    def __init__(self, num_bits: int, den_bits: int, cycles: int):
        self.per_cycle = -(-num_bits // cycles)
        self.width = self.per_cycle * cycles
        self.den_bits = den_bits
        self.start = Signal()
        self.enable = Signal()
        self.num = Signal(unsigned(num_bits))
        self.den = Signal(unsigned(den_bits))
        self.quotient = Signal(unsigned(self.width))

    def elaborate(self, m: Module) -> None:
        rem = Signal(unsigned(self.den_bits + 1))
        pending = Signal(unsigned(self.width))
        den = Signal(unsigned(self.den_bits))
        cur_rem = Mux(self.start, 0, rem)
        cur_num = Mux(self.start, self.num, pending)
        cur_q = Mux(self.start, 0, self.quotient)
        cur_den = Mux(self.start, self.den, den)
        for step in range(self.per_cycle):
            shifted = Signal(unsigned(self.den_bits + 2), name=f"div_shifted{step}")
            m.d.comb += shifted.eq(Cat(cur_num[-1], cur_rem))
            take = shifted >= cur_den
            nxt = Signal(unsigned(self.den_bits + 1), name=f"div_rem{step}")
            m.d.comb += nxt.eq(Mux(take, shifted - cur_den, shifted))
            cur_rem, cur_num, cur_q = nxt, (cur_num << 1)[:self.width], Cat(take, cur_q)[:self.width]
        with m.If(self.enable):
            m.d.sync += [rem.eq(cur_rem), pending.eq(cur_num), self.quotient.eq(cur_q), den.eq(cur_den)]


def _rshift_round(value, shift, width: int):
    """``rshift_round`` of :mod:`hwsim.layernorm` (half away from zero) on a signed value."""
    magnitude = Mux(value < 0, -value, value).as_unsigned()
    half = (Const(1, width + 1) << shift) >> 1
    rounded = ((magnitude + half) >> shift)
    return Mux(value < 0, -rounded, rounded)


class IntNormUnit(wiring.Component):
    """Integer LayerNorm/RMSNorm unit for rows of ``n`` elements (see the module docstring).

    Parameters
    ----------
    kind : {"layernorm", "rmsnorm"}
    n : int
        Row length (the ``sqrt(n)`` constant and the beat count are built in).
    lanes, div_latency, newton_iterations : int
        Elements per beat, cycles per divide, Newton steps (``arch.layernorm``).
    in_bits, x_bits : int
        Input integer width and the saturated width after the pre-shift.
    out_format : str
        Integer output format; ``rounding`` and ``multiplier_bits`` of both requant stages.
    """

    def __init__(self, kind: str, n: int, *, lanes: int = 16, div_latency: int = 24, newton_iterations: int = 5,
                 in_bits: int = 32, x_bits: int = 16, out_format: str = "int8", rounding: str = "gemmlowp",
                 multiplier_bits: int = 32):
        if kind not in ("layernorm", "rmsnorm"):
            raise ValueError(f"kind must be 'layernorm' or 'rmsnorm', not {kind!r}")
        for label, value in (("n", n), ("lanes", lanes), ("div_latency", div_latency),
                             ("newton_iterations", newton_iterations)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, not {value!r}")
        self.kind, self.n, self.lanes = kind, n, lanes
        self.div_latency, self.newton_iterations = div_latency, newton_iterations
        self.in_bits, self.x_bits = in_bits, x_bits
        self.beats = -(-n // lanes)
        self.passes = 3 if kind == "layernorm" else 2
        self._stage = RequantSpec(multiplier_bits=multiplier_bits, rounding=rounding, out_format="int16")
        self._final = RequantSpec(multiplier_bits=multiplier_bits, rounding=rounding, out_format=out_format)
        self._out = get_format(out_format)
        probe = Requant(self._stage)
        self._shift_bits = probe.in_layout["shift"].shape.width
        fields = {"q": unsigned(lanes * in_bits), "multiplier": unsigned(lanes * (multiplier_bits - 1)),
                  "shift": unsigned(lanes * self._shift_bits), "zero_point": unsigned(lanes * 17),
                  "negative": unsigned(lanes), "pre_shift": unsigned(max(in_bits - 1, 1).bit_length()),
                  "fine_multiplier": unsigned(multiplier_bits - 1), "fine_shift": signed(self._shift_bits),
                  "out_zero_point": signed(self._out.bits + 1)}
        self._in_layout = data.StructLayout(fields)
        self._out_layout = data.StructLayout({"code": unsigned(lanes * self._out.bits)})
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    @classmethod
    def from_arch(cls, arch, kind: str, n: int, **options) -> IntNormUnit:
        """The unit of ``arch.layernorm`` (lanes, div_latency, newton_iterations) for rows of ``n``."""
        unit = arch.layernorm
        if unit.arithmetic != "integer":
            raise ValueError(f"arch.layernorm.arithmetic: the RTL unit is the integer norm, not {unit.arithmetic!r}")
        return cls(kind, n, lanes=unit.lanes, div_latency=unit.div_latency,
                   newton_iterations=unit.newton_iterations, **options)

    in_layout = property(lambda self: self._in_layout)
    out_layout = property(lambda self: self._out_layout)
    shift_bits = property(lambda self: self._shift_bits)
    out_format = property(lambda self: self._out)

    @property
    def latency(self) -> int:
        """Cycles from a row's first input beat to its last output beat (steady streams)."""
        return int_norm_cycles(self.n, self.kind, lanes=self.lanes, div_latency=self.div_latency,
                               newton_iterations=self.newton_iterations)

    def describe(self) -> dict:
        return {"kind": self.kind, "n": self.n, "lanes": self.lanes, "div_latency": self.div_latency,
                "newton_iterations": self.newton_iterations, "in_bits": self.in_bits, "x_bits": self.x_bits,
                "out_format": self._out.name, "rounding": self._final.rounding, "latency": self.latency}

    # ------------------------------------------------------------------ widths
    @property
    def _s1_bits(self) -> int:
        return self.x_bits + self.n.bit_length() + 1

    @property
    def _s2_bits(self) -> int:
        return 2 * (self.x_bits + 1) + self.n.bit_length()

    @property
    def _num_constant(self) -> int:
        return round(math.sqrt(self.n) * 2**C_FRAC) << F_R

    def _lane(self, word, index: int, bits: int, is_signed: bool = False):
        value = word[index * bits:(index + 1) * bits]
        return value.as_signed() if is_signed else value

    def _x(self, m, p, lane: int):
        """Pre-shifted, saturated ``x`` of one lane (0 past the row end handled by the caller)."""
        q = self._lane(p.q, lane, self.in_bits, True)
        shifted = Signal(signed(self.in_bits + 1), name=f"shifted{lane}")
        m.d.comb += shifted.eq(_rshift_round(q, p.pre_shift, self.in_bits))
        bound = (1 << (self.x_bits - 1)) - 1
        x = Signal(signed(self.x_bits), name=f"x{lane}")
        m.d.comb += x.eq(Mux(shifted > bound, bound, Mux(shifted < -bound, -bound, shifted)))
        return x

    def elaborate(self, platform):
        m = Module()
        p = self.i.payload
        lanes, ln = self.lanes, self.kind == "layernorm"
        beat = Signal(range(self.beats + 1))
        last_beat = beat == self.beats - 1
        in_row = [Signal(name=f"in_row{lane}") for lane in range(lanes)]
        for lane in range(lanes):
            m.d.comb += in_row[lane].eq(beat * lanes + lane < self.n)

        s1 = Signal(signed(self._s1_bits))
        s2 = Signal(unsigned(self._s2_bits))
        mu = Signal(signed(self.x_bits + 1))
        mu_reg = Signal.like(mu)
        m.d.comb += mu.eq(mu_reg)
        sigma = Signal(unsigned((self._s2_bits + 1) // 2 + 1))
        recip = Signal(unsigned(self._num_constant.bit_length() + 1))
        divider = RestoringDivider(max(self._num_constant.bit_length() + 1, self._s2_bits, self._s1_bits + 2),
                                   max(sigma.shape().width, (2 * self.n).bit_length()), self.div_latency)
        divider.elaborate(m)
        count = Signal(range(self.div_latency + 1))
        step = Signal(range(self.newton_iterations + 1))
        xs = [self._x(m, p, lane) for lane in range(lanes)]
        deviations = [Signal(signed(self.x_bits + 2), name=f"d{lane}") for lane in range(lanes)]
        for lane in range(lanes):
            m.d.comb += deviations[lane].eq(Mux(in_row[lane], xs[lane] - (mu if ln else 0), 0))
        square_sum = sum(d * d for d in deviations)
        x_sum = sum(Mux(in_row[lane], xs[lane], 0) for lane in range(lanes))
        y = (sigma + divider.quotient) >> 1
        newton_next = Mux(y < sigma, y, sigma)

        # last pass: z -> requant to int16 (gamma, beta) -> requant to the output format
        stage = [Requant(self._stage) for _ in range(lanes)]
        final = [Requant(self._final) for _ in range(lanes)]
        fine_m = Signal.like(p.fine_multiplier)
        fine_s = Signal.like(p.fine_shift)
        out_zp = Signal.like(p.out_zero_point)
        outstanding = Signal(range(self.beats * 2 + 8))
        for lane in range(lanes):
            m.submodules[f"stage{lane}"] = stage[lane]
            m.submodules[f"final{lane}"] = final[lane]
            product = deviations[lane] * recip
            z = Signal(signed(product.shape().width), name=f"z{lane}")
            m.d.comb += z.eq(_rshift_round(product, C_FRAC + F_R - F_Z, product.shape().width))
            negative = p.negative[lane]
            sp = stage[lane].i.payload
            m.d.comb += [sp.acc.eq(Mux(negative, -z, z)),
                         sp.multiplier.eq(self._lane(p.multiplier, lane, self._stage.multiplier_bits - 1)),
                         sp.shift.eq(self._lane(p.shift, lane, self._shift_bits, True)),
                         sp.zero_point.eq(self._lane(p.zero_point, lane, 17, True))]
            fp = final[lane].i.payload
            m.d.comb += [fp.acc.eq(stage[lane].o.payload.code.as_signed()), fp.multiplier.eq(fine_m),
                         fp.shift.eq(fine_s), fp.zero_point.eq(out_zp),
                         final[lane].i.valid.eq(stage[lane].o.valid), stage[lane].o.ready.eq(final[lane].i.ready),
                         final[lane].o.ready.eq(self.o.ready)]
        m.d.comb += [self.o.valid.eq(final[0].o.valid),
                     self.o.payload.code.eq(Cat(f.o.payload.code for f in final))]
        out_transfer = self.o.valid & self.o.ready

        def divide(num, den):
            m.d.comb += [divider.start.eq(count == 0), divider.enable.eq(1), divider.num.eq(num), divider.den.eq(den)]
            m.d.sync += count.eq(Mux(count == self.div_latency - 1, 0, count + 1))
            return count == self.div_latency - 1

        def advance_beat(transfer):
            with m.If(transfer):
                m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))

        with m.FSM():
            with m.State("sum"):  # LayerNorm: S1; RMSNorm: S2 directly
                m.d.comb += self.i.ready.eq(1)
                transfer = self.i.valid
                advance_beat(transfer)
                with m.If(transfer):
                    if ln:
                        m.d.sync += s1.eq(Mux(beat == 0, 0, s1) + x_sum)
                    else:
                        m.d.sync += s2.eq(Mux(beat == 0, 0, s2) + square_sum)
                    with m.If(last_beat):
                        m.next = "mean" if ln else "newton"
            if ln:
                with m.State("mean"):
                    magnitude = Mux(s1 < 0, -s1, s1).as_unsigned()
                    with m.If(divide((magnitude << 1) + self.n, 2 * self.n)):
                        m.next = "squares"
                with m.State("squares"):
                    quotient = divider.quotient[:self.x_bits + 1]  # stable: no divide runs in this state
                    m.d.comb += mu.eq(Mux(s1 < 0, -quotient, quotient))
                    m.d.sync += mu_reg.eq(mu)
                    m.d.comb += self.i.ready.eq(1)
                    transfer = self.i.valid
                    advance_beat(transfer)
                    with m.If(transfer):
                        m.d.sync += s2.eq(Mux(beat == 0, 0, s2) + square_sum)
                        with m.If(last_beat):
                            m.next = "newton"
            with m.State("newton"):
                bits = Signal(range(self._s2_bits + 1))
                for i in range(self._s2_bits):
                    with m.If(s2[i]):
                        m.d.comb += bits.eq(i + 1)
                start = Mux(s2 == 0, 0, Const(1, sigma.shape().width) << ((bits + 1) >> 1))
                current = Signal.like(sigma)
                m.d.comb += current.eq(Mux(step == 0, start, newton_next))
                with m.If(count == 0):
                    m.d.sync += sigma.eq(current)
                with m.If(divide(s2, current)):
                    m.d.sync += step.eq(Mux(step == self.newton_iterations - 1, 0, step + 1))
                    with m.If(step == self.newton_iterations - 1):
                        m.next = "reciprocal"
            with m.State("reciprocal"):
                root = Signal.like(sigma)
                m.d.comb += root.eq(Mux(count == 0, newton_next, sigma))
                with m.If(count == 0):
                    m.d.sync += sigma.eq(root)
                with m.If(divide(self._num_constant + (root >> 1), root)):
                    m.next = "normalise"
            with m.State("normalise"):
                m.d.comb += recip.eq(Mux(sigma == 0, 0, divider.quotient))  # stable in this state
                ready = stage[0].i.ready & ((beat != 0) | (outstanding == 0) | out_transfer & (outstanding == 1))
                m.d.comb += [self.i.ready.eq(ready)] + [s.i.valid.eq(self.i.valid & ready) for s in stage]
                transfer = self.i.valid & ready
                advance_beat(transfer)
                with m.If(transfer):
                    m.d.sync += [fine_m.eq(p.fine_multiplier), fine_s.eq(p.fine_shift), out_zp.eq(p.out_zero_point)]
                    with m.If(last_beat):
                        m.next = "sum"
        accepted = self.i.valid & self.i.ready & (stage[0].i.valid)
        m.d.sync += outstanding.eq(outstanding + accepted - out_transfer)
        return m

    @property
    def divides(self) -> int:
        """Integer divides per row (:func:`hwsim.latency.int_norm_divides`)."""
        return int_norm_divides(self.kind, self.newton_iterations)

    def row_beats(self, q, params) -> list[dict]:
        """Input beats (field -> int, two's complement) of rows ``q [rows, n]`` with calibrated
        :class:`hwsim.layernorm.IntNormParams` ``params``: ``passes`` x ``beats`` per row."""
        import numpy as np

        if params.kind != self.kind or params.n != self.n or params.lam_codes is not None:
            raise ValueError(f"params must be plain {self.kind} parameters for n={self.n}, not {params.kind} "
                             f"n={params.n}")
        q = np.asarray(q, np.int64).reshape(-1, self.n)
        pad = self.beats * self.lanes - self.n

        def lanes_of(values, bits):
            v = np.concatenate([np.asarray(values, np.int64), np.zeros(pad, np.int64)]) & ((1 << bits) - 1)
            words = v.reshape(self.beats, self.lanes)
            return [sum(int(x) << (i * bits) for i, x in enumerate(row)) for row in words]

        channel = {"multiplier": lanes_of(params.multiplier, self._stage.multiplier_bits - 1),
                   "shift": lanes_of(params.shift, self._shift_bits), "zero_point": lanes_of(params.zero_point, 17),
                   "negative": lanes_of(params.gamma_sign < 0, 1)}
        row_constants = {"pre_shift": params.pre_shift, "fine_multiplier": params.fine[0],
                         "fine_shift": params.fine[1], "out_zero_point": params.out_zero_point}
        beats = []
        for row in q:
            words = lanes_of(row, self.in_bits)
            for pass_index in range(self.passes):
                last = pass_index == self.passes - 1
                for b in range(self.beats):
                    beat = {"q": words[b], **row_constants}
                    beat.update({k: (v[b] if last else 0) for k, v in channel.items()})
                    beats.append(beat)
        return beats

    def decode_codes(self, words):
        """Output codes of ``words`` (``o.payload.code`` integers, ``beats`` per row) as signed/unsigned
        integers of the output format, ``[rows, n]``."""
        import numpy as np

        bits = self._out.bits
        flat = np.array([(w >> (i * bits)) & ((1 << bits) - 1) for w in words for i in range(self.lanes)], np.int64)
        return np.asarray(self._out.code_to_int(flat), np.int64).reshape(-1, self.beats * self.lanes)[:, :self.n]
