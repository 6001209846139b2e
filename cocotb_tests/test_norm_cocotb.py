# amaranth: UnusedElaboratable=no
"""Integer norm units on Verilator: real MiniLM LayerNorm rows and SmolLM2 RMSNorm rows plus random,
corner and Newton rows, bit-exact vs :func:`hwsim.layernorm.integer_norm`, latency as published.

Members of one stream bank (``sim_harness.streams_verilog``, independent handshakes): the LayerNorm
unit for MiniLM's 384-wide rows and the RMSNorm unit for SmolLM2's 576-wide rows, generated from the
default architecture's ``layernorm`` section with ``lanes = 4`` (the 16-lane default is checked with
amaranth.sim in ``tests/rtl/test_rtl_norm.py``; 4 lanes keep the Verilator build small), and a mutant
LayerNorm unit with one Newton step fewer than the rows need (3 instead of 4), checked against the
LayerNorm jobs.  Jobs: ``norm_jobs``.  Each steady job's cycles (first input beat to last output
beat) must equal :func:`hwsim.latency.int_norm_cycles`; for one row that is also the cycle model's
figure (:func:`hwsim.perf.timing.int_norm_cycles`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import zlib

import numpy as np
import pytest
from stream_bench import drive_stream, load_bank, reset, write_summary

MUTANT = "mutant_newton"
MUTANT_OF = "norm_ln_384"
BENCH_LANES = 4


def _seed() -> int:
    return int(os.environ.get("HWSIM_SEED", "2026")) * 1_000_003 + zlib.crc32(b"norm_bank")


# ---------------------------------------------------------------------------- cocotb side
def _codes(member: dict, beats: list[str], n: int, lanes: int) -> np.ndarray:
    code = next(f for f in member["out_fields"] if f["name"] == "code")
    bits = code["width"] // lanes
    flat = []
    for beat in beats:
        value = (int(beat, 2) >> code["offset"]) & ((1 << code["width"]) - 1)
        flat += [(value >> (i * bits)) & ((1 << bits) - 1) for i in range(lanes)]
    codes = np.array(flat, np.int64).reshape(-1, -(-n // lanes) * lanes)[:, :n]
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes)  # signed integer outputs


async def _member(dut, member: dict, spec: dict, jobs: list[dict], rng) -> dict:
    out = {"rows": 0, "values": 0, "mismatches": 0, "jobs": []}
    beats_per_row = -(-spec["n"] // spec["lanes"])
    for job in jobs:
        run = await drive_stream(dut, job["words"], job["rows"] * beats_per_row, pattern=job["pattern"], rng=rng,
                                 prefix=member["name"] + "__", max_cycles=job["rows"] * (spec["latency"] + 8) * 4)
        got = _codes(member, run.beats, spec["n"], spec["lanes"])
        want = np.array(job["expected"], np.int64)
        bad = got != want
        out["rows"] += job["rows"]
        out["values"] += int(want.size)
        out["mismatches"] += int(np.count_nonzero(bad))
        out["jobs"].append({"name": job["name"], "rows": job["rows"], "pattern": job["pattern"],
                            "measured": job["measured"], "cycles": run.beat_cycles[-1] - run.first_input_cycle,
                            "published": job["published"], "mismatches": int(np.count_nonzero(bad)),
                            "newton_iterations": job["newton_iterations"], "saturated": job["saturated"],
                            "protocol_errors": run.protocol_errors, "idle_cycles": run.idle_cycles,
                            "stall_cycles": run.stall_cycles})
    return out


try:
    import cocotb
except ImportError:  # pragma: no cover
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def norm_bank(dut):
        """Run every member's jobs concurrently; write per-member results."""
        bank = load_bank()
        with open(os.environ["HWSIM_NORM_JOBS"]) as handle:
            payload = json.load(handle)
        for member in bank["members"]:
            getattr(dut, member["name"] + "__i__valid").value = 0
            getattr(dut, member["name"] + "__o__ready").value = 1
        await reset(dut)
        seed = _seed()
        tasks = {m["name"]: cocotb.start_soon(_member(dut, m, payload["specs"][m["name"]], payload["jobs"][m["name"]],
                                                      np.random.default_rng(seed + i)))
                 for i, m in enumerate(bank["members"])}
        results = {name: await task for name, task in tasks.items()}
        write_summary({"seed": seed, "members": results})
        failing = [name for name, r in results.items() if r["mismatches"] and name != MUTANT]
        assert not failing, {name: results[name]["jobs"] for name in failing}


# ---------------------------------------------------------------------------- pytest side
def _bench_arch():
    from hwsim.perf.arch import default_arch

    arch = default_arch()
    return arch.with_(layernorm=dataclasses.replace(arch.layernorm, lanes=BENCH_LANES))


def _members() -> dict:
    from hwsim.rtl.configs import NORM_CONFIGS
    from hwsim.rtl.norm_unit import IntNormUnit

    arch = _bench_arch()
    members = {name: IntNormUnit.from_arch(arch, cfg.kind, cfg.n) for name, cfg in NORM_CONFIGS.items()}
    ln = NORM_CONFIGS[MUTANT_OF]
    members[MUTANT] = IntNormUnit(ln.kind, ln.n, lanes=BENCH_LANES, div_latency=arch.layernorm.div_latency,
                                  newton_iterations=3)
    return members


@functools.cache
def _bank_summary() -> dict:
    """Build the norm bank once; run all jobs once."""
    from norm_jobs import norm_jobs
    from sim_harness import build_verilog, run, streams_verilog

    members = _members()
    rng = np.random.default_rng(_seed())
    jobs = {name: norm_jobs(unit, rng) for name, unit in members.items() if name != MUTANT}
    jobs[MUTANT] = jobs[MUTANT_OF]
    specs = {name: {"n": u.n, "lanes": u.lanes, "latency": u.latency, "kind": u.kind} for name, u in members.items()}
    build_dir = build_verilog("norm_bank", *streams_verilog(members))
    jobs_path = build_dir / "norm_jobs.json"
    jobs_path.write_text(json.dumps({"jobs": jobs, "specs": specs}))
    summary = run(build_dir, "test_norm_cocotb", "norm_bank", {"HWSIM_NORM_JOBS": str(jobs_path)}, label="norm_bank")
    summary["specs"] = specs
    return summary


def _norm_names():
    try:
        from hwsim.rtl.configs import NORM_CONFIGS
    except ImportError:  # pragma: no cover
        return []
    return list(NORM_CONFIGS)


@pytest.mark.parametrize("config", _norm_names())
def test_norm_verilator(config):
    """Real, random, corner, Newton and handshake rows: 0 mismatches; the corner bins are hit."""
    pytest.importorskip("cocotb")
    result = _bank_summary()["members"][config]
    assert result["mismatches"] == 0, [(j["name"], j["mismatches"]) for j in result["jobs"] if j["mismatches"]]
    jobs = {j["name"]: j for j in result["jobs"]}
    assert any(name.startswith("real:") for name in jobs)
    assert jobs["random_corners"]["saturated"] > 0
    assert jobs["newton"]["newton_iterations"] == 4
    assert jobs["handshake"]["idle_cycles"] > 0 and jobs["handshake"]["stall_cycles"] > 0
    assert not any(j["protocol_errors"] for j in result["jobs"])


@pytest.mark.parametrize("config", _norm_names())
def test_norm_cycles_as_published(config):
    """Measured cycles of every steady job equal the published formula and the cycle model's figure
    with ``overlap_rows: false``; one row equals the default (overlapping) model too."""
    pytest.importorskip("cocotb")
    from hwsim.perf.timing import int_norm_cycles as model_norm_cycles
    from hwsim.rtl.configs import NORM_CONFIGS

    summary = _bank_summary()
    jobs = [j for j in summary["members"][config]["jobs"] if j["measured"]]
    assert len(jobs) >= 3
    assert [j["cycles"] for j in jobs] == [j["published"] for j in jobs]
    cfg, arch = NORM_CONFIGS[config], _bench_arch()
    single = next(j for j in jobs if j["rows"] == 1)
    assert single["cycles"] == model_norm_cycles(1, cfg.n, cfg.kind, arch.layernorm)
    # the model's schedule of this unit (rows one after another) charges every job exactly
    rtl_schedule = dataclasses.replace(arch.layernorm, overlap_rows=False)
    assert [j["cycles"] for j in jobs] == [model_norm_cycles(j["rows"], cfg.n, cfg.kind, rtl_schedule) for j in jobs]


def test_norm_newton_mutant_is_caught():
    """A LayerNorm unit with 3 Newton steps (the rows need 4) mismatches on the Newton rows."""
    pytest.importorskip("cocotb")
    result = _bank_summary()["members"][MUTANT]
    newton = next(j for j in result["jobs"] if j["name"] == "newton")
    assert newton["mismatches"] > 0
