# amaranth: UnusedElaboratable=no
"""Weight-stationary systolic array tile (R x C MAC cells), generated from the hwsim architecture spec.

Dataflow ``ws`` of :mod:`hwsim.perf.timing`: array rows hold the reduction dimension ``K``, columns
the output dimension ``N``, and the ``M`` activation rows stream through.  One *fold* computes
``O[M, C] = A[M, R] @ W[R, C]`` (a GEMM tile with ``K <= R``, ``N <= C``; unused rows/columns get
zero codes):

1. **weight preload** (``R`` input beats carrying ``w``): weight rows shift in from the top, one row
   per beat, decoded once at the array edge (send ``W`` bottom row first: row ``R-1`` first);
2. **stream** (``M`` beats carrying ``a``, the last with ``last = 1``): activation row ``m`` enters
   the left edge; element ``k`` is delayed by ``k`` skew registers, moves right one cell per cycle,
   and each cell adds ``F_a * F_w`` (:func:`hwsim.rtl.pe.aligned_product`) to the partial sum arriving
   from above with the accumulator rule of :class:`hwsim.gemm.AccumulatorSpec`
   (:func:`hwsim.rtl.pe.accumulate`): so column ``n`` sums ``k = 0 .. R-1`` in order, exactly as
   :func:`hwsim.gemm.gemm_ex` does;
3. **drain**: partial sums leave the bottom row; column ``n`` is de-skewed by ``C-1-n`` registers so
   output row ``m`` (``C`` accumulators) leaves as one beat.  ``i.ready`` stays low for the
   ``R + C - 2`` cycles until the last activation has passed every cell; then the next fold's preload
   may start (no overlap of folds: SCALE-Sim's schedule).

Timing (every stage advances when ``~o.valid | o.ready``; the whole array stalls under
back-pressure): an activation row accepted in cycle ``s`` leaves in cycle ``s + R + C - 1``
(:attr:`SystolicTile.latency`).  With steady streams, ``F`` folds back to back take
:func:`hwsim.latency.ws_tile_cycles` ``= F * (2R + M + C - 2)`` cycles from the first input transfer to
the last output transfer; the cycle model charges exactly this in its ``tile`` timing mode
(:func:`hwsim.perf.timing.compute_cycles`), one more than SCALE-Sim's last-cycle index (``scalesim``
mode: SCALE-Sim counts the cycle of the last MAC, the tile registers it once more on its way out).

Streams
-------
``i`` payload (LSB first): ``a`` (``R`` activation codes, row ``k`` at bits ``k*a_bits``), ``w`` (``C``
weight codes), ``last`` (final activation row of the fold).
``o`` payload: ``acc0 .. acc{C-1}`` (signed accumulators, LSB weight ``2**lsb_exponent``),
``special`` (bit ``n``: a NaN/Inf operand reached column ``n``), ``overflow`` (bit ``n``: an addition
in column ``n`` left the register range).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.formats import get_format
from hwsim.gemm import AccumulatorSpec, accumulator_bits
from hwsim.latency import ws_tile_latency

from .operands import operand_decoder, shift_shape, significand_shape
from .pe import _accumulator_spec, accumulate, aligned_product

__all__ = ["SystolicTile", "tile_accumulator"]


def tile_accumulator(arch) -> AccumulatorSpec | int:
    """Accumulator of the tile for ``arch`` (an :class:`hwsim.perf.arch.ArchSpec`).

    Integer x integer: a wrapping register of ``arch.pe.accumulator_bits``.  Formats with a fraction
    (floats, dINT): the exact fixed-point register for ``arch.array.rows`` products
    (:func:`hwsim.gemm.accumulator_bits`), so each fold's partial sums are exact.
    """
    a, w = get_format(arch.pe.activation_format), get_format(arch.pe.weight_format)
    if a.kind == "int" and w.kind == "int":
        return AccumulatorSpec(bits=arch.pe.accumulator_bits)
    return accumulator_bits(a, w, arch.array.rows)


class SystolicTile(wiring.Component):
    """R x C weight-stationary systolic tile (see the module docstring for streams and timing).

    Parameters
    ----------
    rows, cols : int
        Array rows ``R`` (reduction dimension) and columns ``C`` (output dimension).
    act_format, weight_format : str or element format spec
        Activation and weight formats (signed ``int``, ``dint`` or ``float``; no zero points).
    accumulator : AccumulatorSpec or int
        Partial-sum register width and overflow rule (an ``int``: wrapping register of that width).
    drop_skew_row : int or None
        Verification mutant: remove one skew register of this row (wrong on purpose).

    Attributes
    ----------
    latency : int
        Cycles from accepting an activation row to its output beat (``R + C - 1``).
    """

    def __init__(self, rows: int, cols: int, act_format, weight_format, accumulator, *,
                 drop_skew_row: int | None = None):
        if not all(isinstance(v, int) and v >= 1 for v in (rows, cols)):
            raise ValueError(f"tile rows and cols must be positive integers, not {rows!r} x {cols!r}")
        a, w = get_format(act_format), get_format(weight_format)
        self._a_dec = operand_decoder(a, zero_point=False)
        self._w_dec = operand_decoder(w, zero_point=False)
        if a.kind == "int" and not a.signed or w.kind == "int" and not w.signed:
            raise ValueError(f"the tile takes signed operand formats (no zero points), not {a.name} x {w.name}")
        if drop_skew_row is not None and not 1 <= drop_skew_row < rows:
            raise ValueError(f"drop_skew_row must be a row with skew registers (1..{rows - 1}), not {drop_skew_row!r}")
        self._rows, self._cols, self._a, self._w = rows, cols, a, w
        self._acc_bits, self._overflow = _accumulator_spec(accumulator)
        self._drop = drop_skew_row
        self._product_bits = (self._a_dec.significand_bits + self._w_dec.significand_bits
                              + self._a_dec.max_shift + self._w_dec.max_shift)
        self._in_layout = data.StructLayout({"a": unsigned(rows * a.bits), "w": unsigned(cols * w.bits), "last": 1})
        out = {f"acc{n}": signed(self._acc_bits) for n in range(cols)}
        out.update(special=unsigned(cols), overflow=unsigned(cols))
        self._out_layout = data.StructLayout(out)
        super().__init__({"i": In(stream.Signature(self._in_layout)),
                          "o": Out(stream.Signature(self._out_layout))})

    @classmethod
    def from_arch(cls, arch, *, accumulator=None, **options) -> SystolicTile:
        """The tile of ``arch`` (rows, cols, formats, accumulator from the :class:`ArchSpec`); ws only.

        ``accumulator`` overrides :func:`tile_accumulator` (e.g. a saturating register)."""
        if arch.array.dataflow != "ws":
            raise ValueError(f"arch.array.dataflow: the RTL tile is weight-stationary ('ws'), not "
                             f"{arch.array.dataflow!r}")
        return cls(arch.array.rows, arch.array.cols, arch.pe.activation_format, arch.pe.weight_format,
                   accumulator or tile_accumulator(arch), **options)

    rows = property(lambda self: self._rows)
    cols = property(lambda self: self._cols)
    act_format = property(lambda self: self._a)
    weight_format = property(lambda self: self._w)
    acc_bits = property(lambda self: self._acc_bits)
    overflow_mode = property(lambda self: self._overflow)
    in_layout = property(lambda self: self._in_layout)
    out_layout = property(lambda self: self._out_layout)

    @property
    def latency(self) -> int:
        return ws_tile_latency(self._rows, self._cols)

    @property
    def lsb_exponent(self) -> int:
        return self._a.lsb_exponent + self._w.lsb_exponent

    def describe(self) -> dict:
        """JSON-ready parameters (for the generator's manifest)."""
        return {"rows": self._rows, "cols": self._cols, "dataflow": "ws", "act_format": self._a.name,
                "weight_format": self._w.name, "acc_bits": self._acc_bits, "overflow": self._overflow,
                "lsb_exponent": self.lsb_exponent, "latency": self.latency,
                "fold_cycles": "2*rows + M + cols - 2"}

    # ------------------------------------------------------------------ pieces
    def _control(self, m, enable):
        """Preload counter and drain counter; returns (loading, accept)."""
        rows, cols = self._rows, self._cols
        loaded = Signal(range(rows + 1))
        drain = Signal(range(rows + cols))
        loading = loaded < rows
        accept = enable & (drain == 0)
        m.d.comb += self.i.ready.eq(accept)
        transfer = accept & self.i.valid
        with m.If(enable & (drain != 0)):
            m.d.sync += drain.eq(drain - 1)
        with m.If(transfer):
            with m.If(loading):
                m.d.sync += loaded.eq(loaded + 1)
            with m.Elif(self.i.payload.last):
                m.d.sync += [loaded.eq(0), drain.eq(rows + cols - 2)]
        return loading, transfer

    def _weights(self, m, enable, shift):
        """Decoded weight registers ``[k][n] -> (S, E, special)``, shifting down one row per beat."""
        w_bits = self._w.bits
        regs = [[(Signal(significand_shape(self._w_dec), name=f"ws_{k}_{n}"),
                  Signal(shift_shape(self._w_dec), name=f"we_{k}_{n}"), Signal(name=f"wx_{k}_{n}"))
                 for n in range(self._cols)] for k in range(self._rows)]
        for n in range(self._cols):
            code = self.i.payload.w[n * w_bits:(n + 1) * w_bits]
            d = self._w_dec.decode(code)
            sources = [(d.significand, d.shift, d.special)] + [regs[k - 1][n] for k in range(1, self._rows)]
            with m.If(enable & shift):
                for k in range(self._rows):
                    m.d.sync += [dst.eq(src) for dst, src in zip(regs[k][n], sources[k], strict=True)]
        return regs

    def _skewed_activations(self, m, enable):
        """Row ``k``'s decoded activation after ``k`` skew registers (the mutant drops one)."""
        a_bits = self._a.bits
        edge = []
        for k in range(self._rows):
            d = self._a_dec.decode(self.i.payload.a[k * a_bits:(k + 1) * a_bits])
            value = (Signal(significand_shape(self._a_dec), name=f"dec_{k}_s"),
                     Signal(shift_shape(self._a_dec), name=f"dec_{k}_e"), Signal(name=f"dec_{k}_x"))
            m.d.comb += [dst.eq(src) for dst, src in zip(value, (d.significand, d.shift, d.special), strict=True)]
            depth = k - (1 if k == self._drop else 0)
            for stage in range(depth):
                reg = (Signal(significand_shape(self._a_dec), name=f"skew_{k}_{stage}_s"),
                       Signal(shift_shape(self._a_dec), name=f"skew_{k}_{stage}_e"), Signal(name=f"skew_{k}_{stage}_x"))
                with m.If(enable):
                    m.d.sync += [dst.eq(src) for dst, src in zip(reg, value, strict=True)]
                value = reg
            edge.append(value)
        return edge

    def _cells(self, m, enable, weights, edge):
        """MAC grid; returns the bottom row's (psum, special, overflow) registers per column."""
        rows, cols = self._rows, self._cols
        acts = list(edge)
        above = [(Const(0, signed(self._acc_bits)), Const(0, 1), Const(0, 1)) for _ in range(cols)]
        for k in range(rows):
            act = acts[k]
            for n in range(cols):
                sw, ew, xw = weights[k][n]
                sa, ea, xa = act
                psum_in, special_in, overflow_in = above[n]
                result, out_of_range = accumulate(m, psum_in, aligned_product(sa, sw, ea, ew), self._acc_bits,
                                                  self._overflow)
                psum = Signal(signed(self._acc_bits), name=f"psum_{k}_{n}")
                special, overflow = Signal(name=f"special_{k}_{n}"), Signal(name=f"overflow_{k}_{n}")
                nxt = (Signal(significand_shape(self._a_dec), name=f"act_{k}_{n}_s"),
                       Signal(shift_shape(self._a_dec), name=f"act_{k}_{n}_e"), Signal(name=f"act_{k}_{n}_x"))
                with m.If(enable):
                    m.d.sync += [psum.eq(result), special.eq(special_in | xa | xw),
                                 overflow.eq(overflow_in | out_of_range)]
                    if n + 1 < cols:
                        m.d.sync += [dst.eq(src) for dst, src in zip(nxt, act, strict=True)]
                above[n] = (psum, special, overflow)
                act = nxt
        return above

    def _deskew(self, m, enable, bottom):
        """Delay column ``n`` by ``C-1-n`` registers so one output row leaves together."""
        outs = []
        for n, value in enumerate(bottom):
            for stage in range(self._cols - 1 - n):
                reg = (Signal(signed(self._acc_bits), name=f"deskew_{n}_{stage}"), Signal(name=f"deskew_{n}_{stage}_x"),
                       Signal(name=f"deskew_{n}_{stage}_o"))
                with m.If(enable):
                    m.d.sync += [dst.eq(src) for dst, src in zip(reg, value, strict=True)]
                value = reg
            outs.append(value)
        return outs

    def elaborate(self, platform):
        m = Module()
        enable = ~self.o.valid | self.o.ready
        loading, transfer = self._control(m, enable)
        weights = self._weights(m, enable, transfer & loading)
        edge = self._skewed_activations(m, enable)
        outs = self._deskew(m, enable, self._cells(m, enable, weights, edge))
        # output valid: the accepted activation beats, delayed by the tile latency
        valid = transfer & ~loading
        for stage in range(self.latency):
            reg = Signal(name=f"valid_{stage}")
            with m.If(enable):
                m.d.sync += reg.eq(valid)
            valid = reg
        m.d.comb += self.o.valid.eq(valid)
        p = self.o.payload
        m.d.comb += [getattr(p, f"acc{n}").eq(acc) for n, (acc, _, _) in enumerate(outs)]
        m.d.comb += [p.special.eq(Cat(x for _, x, _ in outs)), p.overflow.eq(Cat(o for _, _, o in outs))]
        return m
