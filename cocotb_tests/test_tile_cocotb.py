# amaranth: UnusedElaboratable=no
"""Systolic tiles on Verilator: real MiniLM-L6 GEMM tiles, random and adversarial tiles, bit-exact vs
hwsim.gemm, and cycle counts equal to the cycle model's (``tile`` timing mode).

Every tile configuration of :data:`hwsim.rtl.configs.TILE_CONFIGS` (plus a mutant with one skew register
removed) sits in one stream bank (``sim_harness.streams_verilog``: one Verilator build, independent
handshakes) and runs its jobs (``tile_jobs``) in its own coroutine, all in one simulation:

* ``real:<layer>``: a ``16 x 2R x 2C`` tile cut from MiniLM-L6 layer 0 (query projection on the
  embedding output; FFN down projection on the GELU output), activations and weights quantized
  per-tensor to the tile's formats with :func:`hwsim.quantize.quantize` (int8 W8A8, e4m3, int4, dINT4,
  FP4); 4 folds; the fold outputs summed over ``K`` also equal ``gemm_fixed`` of the whole tile;
* ``random_partial`` (partial folds), ``single_row`` (``M = 1``), ``long`` (``M = 3R``),
  ``adversarial`` (all-max / all-min operands: wrap and saturation in the 16-bit registers);
* ``handshake``: random folds with idle input and output back-pressure (values checked, cycles not).

Every steady job's measured cycles (first input transfer to last output transfer) must equal
``compute_cycles(map_gemm(M, K, N, R, C, "ws"), "tile")``.
"""

from __future__ import annotations

import functools
import json
import os
import zlib

import numpy as np
import pytest
from stream_bench import drive_stream, load_bank, reset, write_summary

MUTANT = "mutant_skew"
MUTANT_OF = "tile_ws_4x4_int8xint8"


def _seed() -> int:
    return int(os.environ.get("HWSIM_SEED", "2026")) * 1_000_003 + zlib.crc32(b"tile_bank")


# ---------------------------------------------------------------------------- cocotb side
def _field(value: int, fld: dict) -> int:
    raw = (value >> fld["offset"]) & ((1 << fld["width"]) - 1)
    if fld["signed"] and raw >> (fld["width"] - 1):
        raw -= 1 << fld["width"]
    return raw


def _check(member: dict, job: dict, beats: list[str]) -> dict:
    """Compare output beats with the job's expectations; return counts."""
    fields = {f["name"]: f for f in member["out_fields"]}
    cols = sum(1 for name in fields if name.startswith("acc"))
    got = [int(beat, 2) for beat in beats]
    acc = np.array([[_field(v, fields[f"acc{n}"]) for n in range(cols)] for v in got], np.int64)
    special = np.array([_field(v, fields["special"]) for v in got], np.int64)
    overflow = np.array([_field(v, fields["overflow"]) for v in got], np.int64)
    want = np.array(job["acc"], np.int64)
    bad = (acc != want).any(axis=1) | (special != np.array(job["special"])) | (overflow != np.array(job["overflow"]))
    result = {"vectors": int(want.size), "mismatches": int(np.count_nonzero(bad)),
              "first_mismatch": None if not bad.any() else {
                  "row": int(np.argmax(bad)), "got": acc[np.argmax(bad)].tolist(),
                  "expected": want[np.argmax(bad)].tolist()}}
    if job["layer"] is not None:  # fold outputs summed over K = the whole tile's exact GEMM
        m, row_folds = job["m"], job["row_folds"]
        folds = acc.reshape(-1, row_folds, m, cols).sum(axis=1)  # [col folds, M, C]
        layer = np.concatenate(list(folds), axis=1)[:, :job["n"]]
        result["layer_mismatches"] = int(np.count_nonzero(layer != np.array(job["layer"], np.int64)))
    result["special_rows"] = int(np.count_nonzero(special))
    result["overflow_rows"] = int(np.count_nonzero(overflow))
    return result


async def _member(dut, member: dict, jobs: list[dict], rng) -> dict:
    out = {"vectors": 0, "mismatches": 0, "layer_mismatches": 0, "bins": {}, "jobs": []}
    for job in jobs:
        rows = len(job["acc"])
        run = await drive_stream(dut, job["words"], rows, pattern=job["pattern"], rng=rng,
                                 prefix=member["name"] + "__")
        checked = _check(member, job, run.beats)
        measured = run.beat_cycles[-1] - run.first_input_cycle
        out["vectors"] += checked["vectors"]
        out["mismatches"] += checked["mismatches"]
        out["layer_mismatches"] += checked.get("layer_mismatches", 0)
        for key, value in job["bins"].items():
            out["bins"][key] = out["bins"].get(key, 0) + value
        for key in ("special_rows", "overflow_rows"):
            out["bins"][key] = out["bins"].get(key, 0) + checked[key]
        out["jobs"].append({"name": job["name"], "pattern": job["pattern"], "measured": job["measured"],
                            "m": job["m"], "k": job["k"], "n": job["n"], "folds": job["folds"],
                            "cycles": measured, "model": job["model"], "protocol_errors": run.protocol_errors,
                            "mismatches": checked["mismatches"], "first_mismatch": checked["first_mismatch"],
                            "idle_cycles": run.idle_cycles, "stall_cycles": run.stall_cycles})
    return out


try:
    import cocotb
except ImportError:  # pragma: no cover - the pytest side runs without cocotb installed
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def tile_bank(dut):
        """Run every member's jobs concurrently; write per-member results."""
        bank = load_bank()
        with open(os.environ["HWSIM_TILE_JOBS"]) as handle:
            jobs = json.load(handle)
        for member in bank["members"]:
            getattr(dut, member["name"] + "__i__valid").value = 0
            getattr(dut, member["name"] + "__o__ready").value = 1
        await reset(dut)
        seed = _seed()
        dut._log.info("seed %d", seed)
        tasks = {m["name"]: cocotb.start_soon(_member(dut, m, jobs[m["name"]], np.random.default_rng(seed + i)))
                 for i, m in enumerate(bank["members"])}
        results = {name: await task for name, task in tasks.items()}
        write_summary({"seed": seed, "members": results})
        failing = [name for name, r in results.items() if r["mismatches"] and name != MUTANT]
        assert not failing, {name: results[name]["jobs"] for name in failing}


# ---------------------------------------------------------------------------- pytest side
def _config_names():
    try:
        from hwsim.rtl.configs import TILE_CONFIGS
    except ImportError:  # pragma: no cover
        return []
    return list(TILE_CONFIGS)


@functools.cache
def _bank_summary() -> dict:
    """Build the tile bank (every tile configuration + the skew mutant) once; run all jobs once."""
    from sim_harness import build_verilog, run, streams_verilog
    from tile_jobs import tile_jobs

    from hwsim.rtl.configs import TILE_CONFIGS

    members = {name: cfg.build() for name, cfg in TILE_CONFIGS.items()}
    members[MUTANT] = TILE_CONFIGS[MUTANT_OF].build(drop_skew_row=2)
    rng = np.random.default_rng(_seed())
    jobs = {name: tile_jobs(tile, rng) for name, tile in members.items()}
    build_dir = build_verilog("tile_bank", *streams_verilog(members))
    jobs_path = build_dir / "tile_jobs.json"
    jobs_path.write_text(json.dumps(jobs))
    return run(build_dir, "test_tile_cocotb", "tile_bank", {"HWSIM_TILE_JOBS": str(jobs_path)}, label="tile_bank")


@pytest.mark.parametrize("config", _config_names())
def test_tile_verilator(config):
    """Real, random, adversarial and handshake jobs: 0 mismatches, coverage bins hit."""
    pytest.importorskip("cocotb")
    from hwsim.formats import get_format
    from hwsim.rtl.configs import TILE_CONFIGS

    result = _bank_summary()["members"][config]
    assert result["mismatches"] == 0, [j["first_mismatch"] for j in result["jobs"] if j["mismatches"]]
    assert result["layer_mismatches"] == 0
    assert not any(j["protocol_errors"] for j in result["jobs"])
    bins = result["bins"]
    for name in ("real_vectors", "partial_fold", "single_row", "operand_extremes"):
        assert bins.get(name, 0) > 0, name
    handshake = next(j for j in result["jobs"] if j["pattern"] == "both")
    assert handshake["idle_cycles"] > 0 and handshake["stall_cycles"] > 0
    if TILE_CONFIGS[config].accumulator_bits == 16:
        assert bins["overflow_rows"] > 0
    fmt = get_format(TILE_CONFIGS[config].weight_format)
    if fmt.kind == "float" and (fmt.has_nan or fmt.has_inf):
        assert bins["special_rows"] > 0  # random codes include NaN/Inf where the format has them


@pytest.mark.parametrize("config", _config_names())
def test_tile_cycles_equal_model(config):
    """Measured cycles of every steady job equal the cycle model's tile-mode cycles for its GEMM."""
    pytest.importorskip("cocotb")
    jobs = [j for j in _bank_summary()["members"][config]["jobs"] if j["measured"]]
    assert len(jobs) >= 5
    assert [j["cycles"] for j in jobs] == [j["model"]["tile"] for j in jobs]


def test_tile_skew_mutant_is_caught():
    """A tile with one skew register removed mismatches the golden model."""
    pytest.importorskip("cocotb")
    result = _bank_summary()["members"][MUTANT]
    assert result["mismatches"] > 0
