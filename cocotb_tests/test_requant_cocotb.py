# amaranth: UnusedElaboratable=no
"""Requant unit on Verilator: >= 1,000,000 random vectors per configuration plus directed corners.

Every configuration (plus a deliberately wrong mutant) sits in one bench bank (``sim_harness``),
``LANES`` lanes each; configurations with the same input layout (same multiplier width) share one
stimulus, so all rounding modes see the same vectors in the same cycles.  Expected codes come from
:meth:`hwsim.requant.RequantSpec.apply` (and the output spec's ``int_to_code``), in bulk.

* directed (idle + back-pressure on the streams): exact ties ``acc * M * 2**shift = n + 1/2`` at every
  right shift, positive and negative (for ``gemmlowp`` also at its inner doubling-high-multiply stage),
  saturation on both sides (with and without the zero point), extreme multipliers ``0, 1, 2**(b-2),
  2**(b-1)-1``, extreme shifts (0 and the most negative supported), extreme accumulators;
* random (steady streams, one vector per lane per cycle asserted): ``HWSIM_RQ_VECTORS`` (default
  1,000,000) vectors mixing multipliers from :func:`hwsim.requant.quantize_multiplier` and uniform
  ones, accumulators of every magnitude, shifts over the supported range.

Coverage bins (positive/negative ties, saturate high/low, left shifts for ``gemmlowp``, extreme
operands) are counted over the checked vectors and asserted hit.
"""

from __future__ import annotations

import functools
import os
import time
import zlib

import numpy as np
import pytest
from stream_bench import drive_stream, load_bank, mutants, pack_bank, reset, unpack_bank, write_summary

LANES = 32
RANDOM_VECTORS = int(os.environ.get("HWSIM_RQ_VECTORS", "1000000"))
MAX_REPORTED = 10
MUTANT = "mutant_rne_built_as_single"


def _seed(name: str) -> int:
    return int(os.environ.get("HWSIM_SEED", "2026")) * 1_000_003 + zlib.crc32(name.encode())


def _shift_limits(spec) -> tuple[int, int]:
    """Shifts the golden model and the unit both take: spec.shift_range, at most 62 right."""
    lo, hi = spec.shift_range
    return max(lo, -62), hi


def _directed(spec, rng, out_lo, out_hi) -> dict[str, np.ndarray]:
    """Ties, saturation, extreme operands (see the module docstring); zero points in out_lo..out_hi."""
    bits = spec.multiplier_bits
    s_lo, s_hi = _shift_limits(spec)
    acc_lo, acc_hi = -(1 << (spec.acc_bits - 1)), (1 << (spec.acc_bits - 1)) - 1
    cols = {"acc": [], "multiplier": [], "shift": [], "zero_point": []}

    def add(acc, mult, shift, zp):
        acc, mult, shift, zp = np.broadcast_arrays(*(np.asarray(v, dtype=np.int64) for v in (acc, mult, shift, zp)))
        keep = (acc >= acc_lo) & (acc <= acc_hi) & (shift >= s_lo) & (shift <= s_hi)
        for key, value in zip(cols, (acc, mult, shift, zp), strict=True):
            cols[key].append(value[keep].reshape(-1))

    zps = rng.integers(out_lo, out_hi + 1, size=64)
    # exact ties of the single rounding at every right shift r: acc * M = odd * 2**(r - 1)
    for r in range(1, -s_lo + 1):
        odd = 2 * rng.integers(-40, 40, size=16) + 1
        a = min(r - 1, spec.acc_bits - 8)
        j = r - 1 - a
        for factor in (1, 3):
            if (factor << j) < (1 << (bits - 1)):
                add(odd << a, factor << j, -r, zps[:16])
    add(acc_lo, 1 << (bits - 2), s_lo, zps[:16])  # the most negative product: a tie at the deepest shift
    if spec.rounding == "gemmlowp":
        # M = 2**(bits-2) halves acc in SaturatingRoundingDoublingHighMul: odd acc ties there; acc =
        # odd * 2**n makes that stage exact and ties RoundingDivideByPOT at its shift n
        half = 1 << (bits - 2)
        for n in range(0, 22):
            odd = 2 * rng.integers(-500, 500, size=16) + 1
            add(odd, half, -(bits - 1) - n, zps[:16])
            add(odd << n, half, -(bits - 1) - n, zps[:16])
        for left in range(1, bits - 1):  # left shifts: shift in (-(bits-1), 0]
            add(rng.integers(-(1 << 20), 1 << 20, size=16), rng.integers(half, 2 * half, size=16),
                left - (bits - 1), zps[:16])
    # extremes: every combination of extreme operands
    accs = np.array([acc_lo, acc_lo + 1, -1, 0, 1, acc_hi - 1, acc_hi])
    mults = np.array([0, 1, 1 << (bits - 2), (1 << (bits - 1)) - 1])
    shifts = np.unique(np.array([s_lo, s_lo + 1, -(bits - 1), -(bits - 2), -1, s_hi]).clip(s_lo, s_hi))
    zpx = np.array([out_lo, 0, out_hi])
    grid = np.meshgrid(accs, mults, shifts, zpx, indexing="ij")
    add(*(g.reshape(-1) for g in grid))
    # saturation on both sides: large |acc| with unit-ish scale, plus zero points pushing over the edge
    big = rng.integers(1 << 12, 1 << 20, size=256) * rng.choice([-1, 1], size=256)
    add(big, (1 << (bits - 2)), -(bits - 2), rng.integers(out_lo, out_hi + 1, size=256))
    add(rng.integers(-4, 5, size=256), (1 << (bits - 2)), -(bits - 2), np.where(rng.random(256) < 0.5, out_lo, out_hi))
    return {k: np.concatenate(v) for k, v in cols.items()}


def _random(spec, rng, count: int, out_lo: int, out_hi: int) -> dict[str, np.ndarray]:
    from hwsim.requant import quantize_multiplier

    bits = spec.multiplier_bits
    s_lo, s_hi = _shift_limits(spec)
    acc_bits = spec.acc_bits
    # accumulators: uniform over the register, or of random magnitude 2**0 .. 2**(acc_bits-1)
    magnitude = rng.integers(0, acc_bits, size=count)
    acc = rng.integers(0, 1 << 62, size=count) >> (62 - magnitude)
    acc = np.where(rng.random(count) < 0.5, -acc - 1, acc)
    uniform = rng.random(count) < 0.25
    acc = np.where(uniform, rng.integers(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1), size=count), acc)
    # multipliers from quantize_multiplier of log-uniform real scales, or uniform in range
    real = np.exp2(rng.uniform(-24, 4, size=count))
    mult_q, shift_q = quantize_multiplier(real, bits=bits)
    mult_u = rng.integers(0, 1 << (bits - 1), size=count)
    from_q = rng.random(count) < 0.5
    mult = np.where(from_q, mult_q, mult_u)
    shift = np.where(from_q, shift_q, rng.integers(s_lo, s_hi + 1, size=count))
    shift = np.clip(shift, s_lo, s_hi)
    zp = rng.integers(out_lo, out_hi + 1, size=count)
    return {"acc": acc.astype(np.int64), "multiplier": mult.astype(np.int64), "shift": shift.astype(np.int64),
            "zero_point": zp.astype(np.int64)}


def _out_range(spec) -> tuple[int, int]:
    from hwsim.formats import get_format

    fmt = get_format(spec.out_format)
    return fmt.lo, fmt.hi


def _expected(spec, vectors) -> np.ndarray:
    from hwsim.formats import get_format

    values = spec.apply(vectors["acc"], vectors["multiplier"], vectors["shift"], vectors["zero_point"])
    return get_format(spec.out_format).int_to_code(values).astype(np.int64)


def _bins(spec, vectors) -> dict[str, int]:
    """Coverage from the golden stages: ties of the exact scaled value, saturation, extremes."""
    from hwsim.requant import requant_multiply, requantize

    acc, mult, shift, zp = (vectors[k] for k in ("acc", "multiplier", "shift", "zero_point"))
    product = requant_multiply(acc, mult)
    right = np.clip(-shift, 0, 62)
    frac = product & ((np.int64(1) << right) - 1)
    tie = (right > 0) & (frac == (np.int64(1) << np.maximum(right - 1, 0)))
    wide = requantize(acc, mult, shift, zp, out_format="int32", rounding=spec.rounding,
                      multiplier_bits=spec.multiplier_bits)
    lo, hi = _out_range(spec)
    s_lo, _ = _shift_limits(spec)
    bins = {"tie_positive": int(np.count_nonzero(tie & (product > 0))),
            "tie_negative": int(np.count_nonzero(tie & (product < 0))),
            "tie_shifts": int(len(np.unique(right[tie]))),
            "saturate_hi": int(np.count_nonzero(wide > hi)), "saturate_lo": int(np.count_nonzero(wide < lo)),
            "multiplier_zero": int(np.count_nonzero(mult == 0)),
            "multiplier_max": int(np.count_nonzero(mult == (1 << (spec.multiplier_bits - 1)) - 1)),
            "shift_min": int(np.count_nonzero(shift == s_lo)), "shift_zero": int(np.count_nonzero(shift == 0)),
            "acc_min": int(np.count_nonzero(acc == -(1 << (spec.acc_bits - 1)))),
            "acc_max": int(np.count_nonzero(acc == (1 << (spec.acc_bits - 1)) - 1))}
    if spec.rounding == "gemmlowp":
        bins["left_shift"] = int(np.count_nonzero(shift + (spec.multiplier_bits - 1) > 0))
    return bins


def _report(member, mismatch, vectors, got, want, beat_cycles, lanes, log):
    lines = []
    for index in np.flatnonzero(mismatch)[:MAX_REPORTED]:
        vector = {k: int(v[index]) for k, v in vectors.items()}
        line = (f"{member} vector {index} (lane {index % lanes}, output cycle {beat_cycles[index // lanes]}): "
                f"inputs {vector} got code {int(got[index])} expected code {int(want[index])}")
        log.error(line)
        lines.append(line)
    return lines


def _group_stimulus(specs, rng, phase: str, count: int | None = None):
    """Stimulus for an input group: the group's multiplier/shift ranges; directed zero points over
    every member's output range (each member checks those in its own range), random ones in the range
    all members share (so every member gets the full random count)."""
    ranges = [_out_range(spec) for spec in specs]
    if phase == "directed":
        return _directed(specs[0], rng, min(r[0] for r in ranges), max(r[1] for r in ranges))
    return _random(specs[0], rng, count, max(r[0] for r in ranges), min(r[1] for r in ranges))


try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is in the rtl extra
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def requant_bank(dut):
        """Every requant configuration of the bank: directed corners (idle + back-pressure), then
        random vectors (steady streams)."""
        from hwsim.rtl.configs import REQUANT_CONFIGS

        bank, wrong = load_bank(), mutants()
        lanes = bank["lanes"]
        specs = {m["name"]: REQUANT_CONFIGS[wrong.get(m["name"], m["name"])] for m in bank["members"]}
        seed = _seed("requant_bank")
        rng = np.random.default_rng(seed)
        random_count = RANDOM_VECTORS
        random_count += (-random_count) % lanes
        dut._log.info("requant bank: %d members x %d lanes, seed %d, %d random vectors", len(specs), lanes,
                      seed, random_count)
        results = {name: {"config": wrong.get(name, name), "mismatches": 0, "reported": [], "bins": {}}
                   for name in specs}
        phases = {}
        await reset(dut)
        for phase, pattern in (("directed", "both"), ("random", "steady")):
            if phase == "random" and not random_count:
                continue
            started = time.perf_counter()
            stimulus = {}
            for group in bank["in_groups"]:
                names = group["members"]
                vectors = _group_stimulus([specs[n] for n in names], rng, phase, random_count)
                stimulus.update({n: vectors for n in names})
            longest = max(len(v["acc"]) for v in stimulus.values())
            longest += (-longest) % lanes
            counts = {n: len(v["acc"]) for n, v in stimulus.items()}
            padded = {n: {k: np.resize(col, longest) for k, col in v.items()} for n, v in stimulus.items()}
            words = pack_bank(bank, padded)
            prepared = time.perf_counter() - started
            run = await drive_stream(dut, words, len(words), pattern=pattern, rng=rng)
            got = unpack_bank(bank, run.beats)
            checked = time.perf_counter()
            for name, spec in specs.items():
                vectors, count = stimulus[name], counts[name]
                # zero points outside this member's output range (shared stimulus of a group whose
                # members differ, e.g. int8 and uint8) have no golden value: not checked
                lo, hi = _out_range(spec)
                in_range = (vectors["zero_point"] >= lo) & (vectors["zero_point"] <= hi)
                want = _expected(spec, dict(vectors, zero_point=np.where(in_range, vectors["zero_point"], 0)))
                mismatch = (got[name]["code"][:count] != want) & in_range
                result = results[name]
                result[f"{phase}_vectors"] = int(np.count_nonzero(in_range))
                result[f"{phase}_mismatches"] = int(np.count_nonzero(mismatch))
                result["mismatches"] += result[f"{phase}_mismatches"]
                result["reported"] += _report(name, mismatch, vectors, got[name]["code"], want, run.beat_cycles,
                                              lanes, dut._log)
                for key, value in _bins(spec, {k: v[in_range] for k, v in vectors.items()}).items():
                    result["bins"][key] = result["bins"].get(key, 0) + value
            phases[phase] = {"cycles": run.cycles, "beats": len(run.beats), "sim_seconds": run.seconds,
                             "prepare_seconds": prepared, "check_seconds": time.perf_counter() - checked,
                             "idle_cycles": run.idle_cycles, "stall_cycles": run.stall_cycles,
                             "throughput_ok": run.cycles <= len(run.beats) + 4,
                             "protocol_errors": run.protocol_errors}
            dut._log.info("%s phase: %d beats in %d cycles, %.2f s simulated, %.2f s preparing", phase,
                          len(run.beats), run.cycles, run.seconds, prepared)
        for result in results.values():
            result["vectors"] = result.get("directed_vectors", 0) + result.get("random_vectors", 0)
        write_summary({"seed": seed, "lanes": lanes, "members": results, "phases": phases})
        assert not any(p["protocol_errors"] for p in phases.values())
        failing = [name for name, r in results.items() if r["mismatches"] and name not in wrong]
        assert not failing, [results[name]["reported"][:2] for name in failing]


# ---------------------------------------------------------------------------- pytest side
EXPECTED_BINS = ("tie_positive", "tie_negative", "saturate_hi", "saturate_lo", "multiplier_zero",
                 "multiplier_max", "shift_min", "shift_zero", "acc_min", "acc_max")


def _config_names():
    try:
        from hwsim.rtl.configs import REQUANT_CONFIGS
    except ImportError:  # pragma: no cover
        return []
    return list(REQUANT_CONFIGS)


@functools.cache
def _bank_summary() -> dict:
    """Build the requant bank (every configuration + the mutant) once and run it once per session."""
    from sim_harness import build, run

    from hwsim.requant import RequantSpec
    from hwsim.rtl.configs import REQUANT_CONFIGS
    from hwsim.rtl.requant_unit import Requant

    members = {name: Requant(spec) for name, spec in REQUANT_CONFIGS.items()}
    # the mutant: generated with 'single' rounding, checked against the 'rne' configuration
    members[MUTANT] = Requant(RequantSpec(multiplier_bits=16, rounding="single", out_format="int8"))
    build_dir = build(f"requant_bank_x{LANES}", members, LANES)
    return run(build_dir, "test_requant_cocotb", "requant_bank", {"HWSIM_MUTANTS": f"{MUTANT}:rq_rne_m16_int8"},
               label="requant_bank")


def test_requant_bank_streams():
    """One vector per lane per cycle when never stalled; idle and back-pressure cycles exercised."""
    pytest.importorskip("cocotb")
    phases = _bank_summary()["phases"]
    assert phases["random"]["throughput_ok"], phases["random"]
    assert phases["directed"]["idle_cycles"] > 0 and phases["directed"]["stall_cycles"] > 0
    assert not phases["directed"]["protocol_errors"] and not phases["random"]["protocol_errors"]


@pytest.mark.parametrize("config", _config_names())
def test_requant_verilator(config):
    """>= 1M random vectors and the directed corners of one requant configuration match hwsim."""
    pytest.importorskip("cocotb")
    from hwsim.rtl.configs import REQUANT_CONFIGS

    result = _bank_summary()["members"][config]
    assert result["mismatches"] == 0, result["reported"][:3]
    assert result["random_vectors"] >= RANDOM_VECTORS
    expected = list(EXPECTED_BINS) + (["left_shift"] if REQUANT_CONFIGS[config].rounding == "gemmlowp" else [])
    missing = [b for b in expected if result["bins"].get(b, 0) == 0]
    assert not missing, f"coverage bins not hit: {missing}"
    assert result["bins"]["tie_shifts"] >= 30  # ties at (at least) every shift up to 30


def test_requant_mutant_is_caught():
    """A unit generated with 'single' rounding fails the 'rne' scoreboard (on the directed ties)."""
    pytest.importorskip("cocotb")
    result = _bank_summary()["members"][MUTANT]
    assert result["config"] == "rq_rne_m16_int8"
    assert result["directed_mismatches"] > 0
    assert "expected code" in result["reported"][0]
