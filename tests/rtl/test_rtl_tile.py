# amaranth: UnusedElaboratable=no
"""amaranth.sim checks of the systolic tile generator: folds of random tiles vs hwsim.gemm, cycle counts
vs the cycle model's ``tile`` mode, the skew mutant, stalls, construction errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator

from hwsim.formats import get_format
from hwsim.gemm import AccumulatorSpec, gemm_ex
from hwsim.latency import ws_tile_cycles, ws_tile_latency
from hwsim.perf.timing import compute_cycles, map_gemm
from hwsim.rtl.configs import TILE_CONFIGS
from hwsim.rtl.tile import SystolicTile


def _pack(codes, bits: int) -> int:
    return sum(int(c) << (i * bits) for i, c in enumerate(codes))


def tile_beats(dut, a_folds, w_folds) -> list[dict]:
    """Input beats of folds ``(A[M, R], W[R, C])``: weights bottom row first, then the activation rows."""
    beats = []
    for a, w in zip(a_folds, w_folds, strict=True):
        beats += [{"a": 0, "w": _pack(w[k], dut.weight_format.bits), "last": 0} for k in reversed(range(dut.rows))]
        beats += [{"a": _pack(row, dut.act_format.bits), "w": 0, "last": int(i == len(a) - 1)}
                  for i, row in enumerate(a)]
    return beats


def simulate(dut, beats, *, stall_every: int = 0, max_cycles: int = 2000):
    """Drive ``beats``; return (output accumulator rows, cycle of first input, cycles of outputs)."""
    out, when, first = [], [], []

    async def driver(ctx):
        for beat in beats:
            ctx.set(dut.i.payload, beat)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        cycle = 0
        async for _clk, _rst, iv, ir, valid, ready, payload in ctx.tick().sample(
                dut.i.valid, dut.i.ready, dut.o.valid, dut.o.ready, dut.o.payload):
            if iv and ir and not first:
                first.append(cycle)
            if valid and ready:
                out.append([payload[f"acc{n}"] for n in range(dut.cols)])
                when.append(cycle)
            ctx.set(dut.o.ready, not (stall_every and cycle % stall_every == 1))
            cycle += 1

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(max_cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(bench)
    sim.run()
    return np.array(out, dtype=object), first[0], when


def _random_folds(dut, m: int, folds: int, rng):
    a_bits, w_bits = dut.act_format.bits, dut.weight_format.bits
    a = [rng.integers(0, 1 << a_bits, (m, dut.rows)) for _ in range(folds)]
    w = [rng.integers(0, 1 << w_bits, (dut.rows, dut.cols)) for _ in range(folds)]
    return a, w


def _expected(dut, a_folds, w_folds):
    acc = AccumulatorSpec(bits=dut.acc_bits, overflow=dut.overflow_mode) if dut.acc_bits <= 64 else None
    rows = []
    for a, w in zip(a_folds, w_folds, strict=True):
        res = gemm_ex(a, dut.act_format, w, dut.weight_format, accumulator=acc)
        values = res.values
        if values.dtype.kind == "f":  # special operands: the register holds the finite part
            from hwsim.gemm import gemm_fixed

            values, _ = gemm_fixed(a, dut.act_format, w, dut.weight_format)
        rows.append(np.asarray(values))
    return np.concatenate(rows)


@pytest.mark.parametrize("name", [n for n, c in TILE_CONFIGS.items() if c.rows * c.cols <= 32])
def test_tile_folds_match_gemm(name):
    """Two back-to-back folds of random codes equal hwsim.gemm (exact or with the register's rule)."""
    dut = TILE_CONFIGS[name].build()
    rng = np.random.default_rng(12)
    a, w = _random_folds(dut, 5, 2, rng)
    got, first, when = simulate(dut, tile_beats(dut, a, w))
    want = _expected(dut, a, w)
    assert got.shape == want.shape
    assert np.array_equal(got.astype(np.int64), np.asarray(want, dtype=np.int64))
    fm = map_gemm(5, dut.rows, 2 * dut.cols, dut.rows, dut.cols, "ws")  # two column folds
    assert when[-1] - first == compute_cycles(fm, "tile") == ws_tile_cycles(dut.rows, dut.cols, 5, 2)
    assert when[0] - first == dut.rows + ws_tile_latency(dut.rows, dut.cols)


def test_tile_overflow_corners():
    """All-min operands overflow a 16-bit register: wrap and saturate as hwsim.gemm_ex says."""
    for overflow in ("wrap", "saturate"):
        dut = SystolicTile(4, 4, "int8", "int8", AccumulatorSpec(bits=16, overflow=overflow))
        a = np.full((3, 4), 0x80)
        a[1] = 0x7F
        w = np.full((4, 4), 0x80)
        got, _, _ = simulate(dut, tile_beats(dut, [a], [w]))
        want = gemm_ex(a, "int8", w, "int8", accumulator=AccumulatorSpec(bits=16, overflow=overflow)).values
        assert np.array_equal(got.astype(np.int64), want)
        assert overflow != "saturate" or want.max() == 32767


def test_tile_backpressure_keeps_results():
    """Output stalls freeze the whole array; results and order are unchanged."""
    dut = TILE_CONFIGS["tile_ws_4x4_e4m3xe4m3"].build()
    a, w = _random_folds(dut, 7, 2, np.random.default_rng(3))
    got, first, when = simulate(dut, tile_beats(dut, a, w), stall_every=3)
    assert np.array_equal(got.astype(np.int64), _expected(dut, a, w).astype(np.int64))
    assert when[-1] - first > ws_tile_cycles(4, 4, 7, 2)


def test_tile_skew_mutant_is_wrong():
    """One skew register removed: the tile adds products of the wrong activation rows."""
    dut = SystolicTile(4, 4, "int8", "int8", 32, drop_skew_row=2)
    a, w = _random_folds(dut, 5, 1, np.random.default_rng(5))
    got, _, _ = simulate(dut, tile_beats(dut, a, w))
    assert not np.array_equal(got.astype(np.int64), _expected(dut, a, w).astype(np.int64))


def test_tile_from_arch_and_errors():
    cfg = TILE_CONFIGS["tile_ws_8x8_e4m3xe4m3"]
    arch = cfg.arch()
    dut = SystolicTile.from_arch(arch)
    assert (dut.rows, dut.cols, dut.act_format.name) == (8, 8, get_format("float8_e4m3fn").name)
    assert dut.describe()["latency"] == 15 and arch.timing_mode == "tile"
    with pytest.raises(ValueError, match="dataflow"):
        SystolicTile.from_arch(arch.with_(array=type(arch.array)(rows=8, cols=8, dataflow="os")))
    with pytest.raises(ValueError, match="signed operand formats"):
        SystolicTile(4, 4, "uint8", "int8", 32)
    with pytest.raises(ValueError, match="drop_skew_row"):
        SystolicTile(4, 4, "int8", "int8", 32, drop_skew_row=0)
    with pytest.raises(ValueError, match="rows and cols"):
        SystolicTile(0, 4, "int8", "int8", 32)
