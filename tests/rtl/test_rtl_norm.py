# amaranth: UnusedElaboratable=no
"""amaranth.sim checks of the integer norm unit: rows vs hwsim.layernorm.integer_norm (bit-exact), the
published latency and row interval, the Newton-iteration mutant, zero-variance and saturating rows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("amaranth")

from amaranth.sim import Simulator

from hwsim.latency import INT_NORM_PIPELINE, int_norm_cycles, int_norm_interval
from hwsim.layernorm import IntNormSpec, calibrate_norm, integer_norm
from hwsim.rtl.configs import NORM_CONFIGS
from hwsim.rtl.norm_unit import IntNormUnit


def run_rows(dut, q, params):
    """Stream rows ``q`` through ``dut``; return (codes [rows, n], first input cycle, cycle of each row's
    last output)."""
    beats = dut.row_beats(q, params)
    words, when, first = [], [], []

    async def driver(ctx):
        for beat in beats:
            ctx.set(dut.i.payload, beat)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        cycle = 0
        async for _clk, _rst, iv, ir, valid, payload in ctx.tick().sample(dut.i.valid, dut.i.ready, dut.o.valid,
                                                                          dut.o.payload):
            if iv and ir and not first:
                first.append(cycle)
            if valid:
                words.append(payload.code)
                when.append(cycle)
            cycle += 1

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        await ctx.tick().repeat(len(q) * (dut.latency + 2) + 20)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(bench)
    sim.run()
    return dut.decode_codes(words), first[0], when[dut.beats - 1::dut.beats]


def _rows(kind: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    q = rng.integers(-300_000, 300_000, (3, n))
    q[1] = 12345  # constant row: zero variance (LayerNorm), sigma = 0 path
    q[2, :3] = [2**31 - 1, -(2**31), 2**30]  # saturates after the pre-shift
    gamma, beta = rng.normal(0, 1, n), rng.normal(0, 0.3, n)
    params = calibrate_norm(kind, gamma, beta if kind == "layernorm" else None, in_absmax=300_000.0,
                            out_scale=0.03)
    return q, params


@pytest.mark.parametrize("kind", ["layernorm", "rmsnorm"])
def test_norm_rows_bit_exact_and_timed(kind):
    n, lanes, div_latency = 40, 8, 6
    dut = IntNormUnit(kind, n, lanes=lanes, div_latency=div_latency, newton_iterations=5)
    q, params = _rows(kind, n, 7)
    stats = {}
    want = integer_norm(q, params, stats=stats)
    got, first, last = run_rows(dut, q, params)
    assert stats["x_saturated"] > 0
    assert np.array_equal(got, want)
    timing = {"lanes": lanes, "div_latency": div_latency, "newton_iterations": 5}
    assert [t - first for t in last] == [int_norm_cycles(n, kind, rows=r, **timing) for r in (1, 2, 3)]
    assert dut.latency == int_norm_cycles(n, kind, **timing) == IntNormSpec(
        lanes, div_latency, 5, pipeline=INT_NORM_PIPELINE).latency(n, kind)
    assert last[1] - last[0] == int_norm_interval(n, kind, **timing)


def test_norm_default_arch_unit_one_row():
    """The configuration generated from the default architecture (16 lanes, 24-cycle divides)."""
    dut = NORM_CONFIGS["norm_ln_384"].build()
    assert (dut.lanes, dut.div_latency, dut.newton_iterations) == (16, 24, 5)
    q, params = _rows("layernorm", 384, 3)
    got, first, last = run_rows(dut, q[:1], params)
    assert np.array_equal(got, integer_norm(q[:1], params))
    assert last[0] - first == dut.latency == 3 * 24 + 7 * 24 + INT_NORM_PIPELINE


def test_norm_one_newton_iteration_fewer_is_wrong():
    """A row whose square root needs 4 Newton steps: a 3-step unit gets sigma (and the outputs) wrong."""
    n = 16
    q = np.zeros((1, n), np.int64)
    q[0, :3] = [65, 11, 3]  # RMSNorm: S2 = 4355, floor sqrt 65 after 4 Newton updates from 128
    gamma = np.linspace(0.5, 1.5, n)
    params = calibrate_norm("rmsnorm", gamma, None, in_absmax=65.0, out_scale=2.5 / 127)
    stats = {}
    want = integer_norm(q, params, stats=stats)
    assert stats["newton_iterations"] == 4
    good, _, _ = run_rows(IntNormUnit("rmsnorm", n, lanes=4, div_latency=4, newton_iterations=4), q, params)
    bad, _, _ = run_rows(IntNormUnit("rmsnorm", n, lanes=4, div_latency=4, newton_iterations=3), q, params)
    assert np.array_equal(good, want)
    assert not np.array_equal(bad, want)


def test_norm_unit_errors():
    with pytest.raises(ValueError, match="kind must be"):
        IntNormUnit("batchnorm", 8)
    with pytest.raises(ValueError, match="lanes must be a positive integer"):
        IntNormUnit("rmsnorm", 8, lanes=0)
    unit = IntNormUnit("rmsnorm", 8, lanes=4)
    params = calibrate_norm("layernorm", np.ones(8), np.zeros(8), in_absmax=10.0, out_scale=0.1)
    with pytest.raises(ValueError, match="plain rmsnorm parameters"):
        unit.row_beats(np.zeros((1, 8)), params)
