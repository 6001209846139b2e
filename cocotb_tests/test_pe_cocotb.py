# amaranth: UnusedElaboratable=no
"""PE on Verilator: every operand-code pair of every configuration, plus accumulation sequences.

cocotb coroutines (run inside the simulator) and the pytest functions that build and run them.  The
DUT is a :class:`hwsim.rtl.lanes.LaneArray` of ``LANES`` PEs so one simulated cycle checks ``LANES``
vectors.  Expected values come from :func:`hwsim.gemm.gemm_ex` / :func:`hwsim.gemm.gemm_fixed` and the
format specs (``is_special``, ``decode``), computed in bulk with numpy; nothing is re-derived here.

All configurations (plus a deliberately wrong mutant) sit in one bench bank (``sim_harness``), LANES
lanes each, and run in one simulation:

* exhaustive phase: all ``2**a.bits * 2**b.bits`` code pairs (65,536 for 8x8), each its own
  one-product sum (``first = last = 1``), as the outer product ``A (Na x 1) @ B (1 x Nb)`` of all codes
  (unsigned operands get a random zero point per row of A, as ``gemm``'s per-row zero point); smaller
  operand spaces repeat to the largest one's length; steady streams, and the bench asserts one vector
  per lane per cycle;
* accumulate phase: seeded random sequences of length 1 .. 4,096 plus overflow corners (runs of the
  largest products of each format, all positive, all negative, then a swing), with idle and
  back-pressure on the streams.

Coverage bins (zero, max, min, subnormal, NaN, Inf, overflow, saturate, wrap) are counted from the
vectors that were checked and asserted hit where the configuration has them.
"""

from __future__ import annotations

import functools
import os
import zlib

import numpy as np
import pytest
from stream_bench import drive_stream, load_bank, mutants, pack_bank, reset, unpack_bank, write_summary

LANES = 16
MAX_REPORTED = 10
MUTANT = "mutant_int8xint8"
CORNER_LENGTH = 1024


# ---------------------------------------------------------------------------- shared with the sim side
def _seed() -> int:
    return int(os.environ.get("HWSIM_SEED", "2026")) * 1_000_003 + zlib.crc32(b"pe_bank")


def _acc_spec(cfg):
    from hwsim.gemm import AccumulatorSpec

    acc = cfg.accumulator
    return acc if isinstance(acc, AccumulatorSpec) else None


def _zero_points(fmt, rng, size):
    if fmt.kind == "int" and not fmt.signed:
        return rng.integers(0, 1 << fmt.bits, size=size)
    return np.zeros(size, dtype=np.int64)


def _operand_bins(fmt, codes: np.ndarray, prefix: str) -> dict[str, int]:
    """Coverage of one operand column from the golden spec's view of the codes."""
    values = fmt.decode(codes)
    finite = np.isfinite(values)
    bins = {f"{prefix}_zero": int(np.count_nonzero(values == 0)),
            f"{prefix}_max": int(np.count_nonzero(values == fmt.max)),
            f"{prefix}_min": int(np.count_nonzero(values == fmt.min))}
    if fmt.kind == "float":
        tiny = finite & (values != 0) & (np.abs(values) < fmt.min_normal)
        bins[f"{prefix}_subnormal"] = int(np.count_nonzero(tiny))
        if fmt.has_nan:
            bins[f"{prefix}_nan"] = int(np.count_nonzero(np.isnan(values)))
        if fmt.has_inf:
            bins[f"{prefix}_inf"] = int(np.count_nonzero(np.isinf(values)))
    if fmt.kind == "dint":  # no exact zero: the +-alpha denormals instead
        del bins[f"{prefix}_zero"]
        bins[f"{prefix}_alpha"] = int(np.count_nonzero(np.abs(values) == fmt.alpha))
    return bins


def _register(result) -> np.ndarray:
    """Accumulator register contents (integer LSB units) of a :class:`hwsim.gemm.GemmResult`.

    ``gemm_ex`` returns int64 for int x int and the exact value as float64 otherwise (dINT); the
    register holds ``value * 2**-lsb_exponent``, an integer that float64 represents exactly here.
    """
    values = result.values
    if values.dtype.kind == "f":
        return np.ldexp(values, -result.lsb_exponent).astype(np.int64)
    return values


def _exhaustive(cfg, zp_rows, zp_cols):
    """Every code pair as the outer product of all codes; golden values from hwsim.gemm."""
    from hwsim.formats import get_format
    from hwsim.gemm import gemm_ex, gemm_fixed

    a, b = get_format(cfg.a_format), get_format(cfg.b_format)
    na, nb = 1 << a.bits, 1 << b.bits
    A = np.arange(na, dtype=np.int64).reshape(na, 1)
    B = np.arange(nb, dtype=np.int64).reshape(1, nb)
    zpa, zpb = zp_rows[:na].reshape(na, 1), zp_cols[:nb].reshape(1, nb)
    acc = _acc_spec(cfg)
    exact, _ = gemm_fixed(A, a, B, b, a_zero_point=zpa, b_zero_point=zpb)
    if acc is not None:
        expected = _register(gemm_ex(A, a, B, b, a_zero_point=zpa, b_zero_point=zpb, accumulator=acc))
        overflow = (exact < acc.lo) | (exact > acc.hi)
    else:
        expected, overflow = exact, np.zeros(exact.shape, dtype=bool)
    count = na * nb
    inputs = {"a": np.repeat(A[:, 0], nb), "b": np.tile(B[0], na),
              "a_zp": np.repeat(zpa[:, 0], nb), "b_zp": np.tile(zpb[0], na),
              "first": np.ones(count, np.int64), "last": np.ones(count, np.int64)}
    want = {"acc": expected.reshape(-1), "special": (a.is_special(A) | b.is_special(B)).reshape(-1).astype(np.int64),
            "overflow": overflow.reshape(-1).astype(np.int64)}
    bins = {**_operand_bins(a, inputs["a"], "a"), **_operand_bins(b, inputs["b"], "b"),
            "product_zero": int(np.count_nonzero(exact == 0))}
    return inputs, want, bins


def _corner_code(fmt, which: str) -> int:
    return int(fmt.encode(np.array([fmt.max if which == "max" else fmt.min]))[0])


def _batches(rng) -> list[tuple[str, int]]:
    lengths = [1, 2, 3, 7, 64, int(rng.integers(100, 1000)), 4096]
    return [("random", n) for n in lengths] + [(k, CORNER_LENGTH) for k in ("pos", "neg", "swing")]


def _accumulate_stimulus(cfgs, batches, lanes, rng):
    """One stimulus for a group of configurations with the same operand formats (time-major beats)."""
    from hwsim.formats import get_format

    a, b = get_format(cfgs[0].a_format), get_format(cfgs[0].b_format)
    specials = [(get_format(c.a_format), get_format(c.b_format)) for c in cfgs]
    cols = {k: [] for k in ("a", "b", "a_zp", "b_zp", "first", "last")}
    sequences = []
    for kind, length in batches:
        a_seq = rng.integers(0, 1 << a.bits, size=(lanes, length))
        b_seq = rng.integers(0, 1 << b.bits, size=(lanes, length))
        if kind == "random":
            clean = np.arange(lanes) % 3 != 0  # NaN/Inf only in every third sequence
            for fa, fb in specials:
                a_seq[clean] = np.where(fa.is_special(a_seq[clean]), 0, a_seq[clean])
                b_seq[clean] = np.where(fb.is_special(b_seq[clean]), 0, b_seq[clean])
        else:
            a_seq[1::2] = _corner_code(a, "min" if kind == "neg" else "max")
            b_max, b_min = _corner_code(b, "max"), _corner_code(b, "min")
            if kind == "swing":
                b_seq[1::2] = np.where(np.arange(length) < length // 2, b_max, b_min)
            else:
                b_seq[1::2] = b_max
        zp_a, zp_b = _zero_points(a, rng, lanes), _zero_points(b, rng, lanes)
        sequences += [(a_seq[k], b_seq[k], int(zp_a[k]), int(zp_b[k])) for k in range(lanes)]
        step = np.arange(length)
        cols["a"].append(a_seq.T.reshape(-1))
        cols["b"].append(b_seq.T.reshape(-1))
        cols["a_zp"].append(np.tile(zp_a, length))
        cols["b_zp"].append(np.tile(zp_b, length))
        cols["first"].append(np.repeat((step == 0).astype(np.int64), lanes))
        cols["last"].append(np.repeat((step == length - 1).astype(np.int64), lanes))
    return {k: np.concatenate(v) for k, v in cols.items()}, sequences


def _accumulate_expected(cfg, sequences):
    """Golden register value, NaN/Inf and overflow flags of every sequence (hwsim.gemm)."""
    from hwsim.formats import get_format
    from hwsim.gemm import gemm_ex, gemm_fixed

    a, b = get_format(cfg.a_format), get_format(cfg.b_format)
    acc = _acc_spec(cfg)
    values, specials, overflows = [], [], []
    bins = {"overflow": 0, "saturate_hi": 0, "saturate_lo": 0, "wrap": 0, "special_sequence": 0}
    for a_seq, b_seq, zp_a, zp_b in sequences:
        A, B = a_seq.reshape(1, -1), b_seq.reshape(-1, 1)
        if acc is not None:
            res = gemm_ex(A, a, B, b, a_zero_point=zp_a, b_zero_point=zp_b, accumulator=acc)
            value, overflow = int(_register(res)[0, 0]), res.overflow_events > 0
            if overflow and acc.overflow == "saturate":
                bins["saturate_hi"] += int(value == acc.hi)
                bins["saturate_lo"] += int(value == acc.lo)
            elif overflow:
                bins["wrap"] += 1
        else:
            value, overflow = int(gemm_fixed(A, a, B, b)[0][0, 0]), False
        special = bool(a.is_special(A).any() or b.is_special(B).any())
        bins["overflow"] += int(overflow)
        bins["special_sequence"] += int(special)
        values.append(value)
        specials.append(int(special))
        overflows.append(int(overflow))
    want = {"acc": np.array(values, dtype=object), "special": np.array(specials, dtype=np.int64),
            "overflow": np.array(overflows, dtype=np.int64)}
    return want, bins


def _compare(member, got, want, count, inputs, beat_cycles, lanes, log, what):
    mismatch = np.zeros(count, dtype=bool)
    for key, expected in want.items():
        mismatch |= np.asarray(got[key][:count] != expected[:count], dtype=bool)
    lines = []
    for index in np.flatnonzero(mismatch)[:MAX_REPORTED]:
        vector = {k: int(v[index]) for k, v in inputs.items()}
        line = (f"{member} {what} {index} (lane {index % lanes}, output cycle {beat_cycles[index // lanes]}): "
                f"inputs {vector} got {({k: int(v[index]) for k, v in got.items()})} "
                f"expected {({k: int(v[index]) for k, v in want.items()})}")
        log.error(line)
        lines.append(line)
    return int(np.count_nonzero(mismatch)), lines


def _groups(bank, cfgs):
    """Members sharing an input slice, with their configurations (single-format PEs only)."""
    return [[(name, cfgs[name]) for name in group["members"]] for group in bank["in_groups"]
            if group["members"][0] in cfgs]


def _sub_codes(words: np.ndarray, bits: int, count: int) -> list[np.ndarray]:
    """The ``count`` packed ``bits``-wide codes of operand words (element j in bits j*bits...)."""
    return [(words >> (j * bits)) & ((1 << bits) - 1) for j in range(count)]


def _multi_exhaustive(lane):
    """Every operand-word pair in every mode of a MultiPrecisionPE; golden per-element products."""
    from hwsim.formats import get_format
    from hwsim.gemm import mac_product_fixed

    words = np.arange(256, dtype=np.int64)
    a_words, b_words = np.repeat(words, 256), np.tile(words, 256)
    cols = {"a": [], "b": [], "mode": []}
    want = {"acc": [], "special": [], "overflow": []}
    bins = {}
    for mode, (a_name, b_name, count) in enumerate(lane.modes):
        a, b = get_format(a_name), get_format(b_name)
        subs_a, subs_b = _sub_codes(a_words, a.bits, count), _sub_codes(b_words, b.bits, count)
        total = sum(mac_product_fixed(x, a, y, b)[0] for x, y in zip(subs_a, subs_b, strict=True))
        special = np.any([a.is_special(x) | b.is_special(y) for x, y in zip(subs_a, subs_b, strict=True)], axis=0)
        cols["a"].append(a_words)
        cols["b"].append(b_words)
        cols["mode"].append(np.full(len(a_words), mode, dtype=np.int64))
        want["acc"].append(total << lane.alignment(mode))
        want["special"].append(special.astype(np.int64))
        want["overflow"].append(np.zeros(len(a_words), dtype=np.int64))
        bins[f"mode{mode}_vectors"] = len(a_words)
        bins[f"mode{mode}_zero_sum"] = int(np.count_nonzero(total == 0))
        if a.has_nan or b.has_nan:
            bins[f"mode{mode}_special"] = int(np.count_nonzero(special))
    inputs = {k: np.concatenate(v) for k, v in cols.items()}
    inputs["first"] = inputs["last"] = np.ones(len(inputs["a"]), dtype=np.int64)
    return inputs, {k: np.concatenate(v) for k, v in want.items()}, bins


def _multi_accumulate(lane, batches, lanes, rng):
    """Random sequences with the mode fixed per lane (lane % modes); golden hwsim.gemm.gemm_fixed over
    the unpacked elements, aligned to the accumulator LSB."""
    from hwsim.formats import get_format
    from hwsim.gemm import gemm_fixed

    modes = np.arange(lanes) % len(lane.modes)
    cols = {k: [] for k in ("a", "b", "mode", "first", "last")}
    want = {"acc": [], "special": [], "overflow": []}
    for _, length in batches:
        a_seq = rng.integers(0, 256, size=(lanes, length))
        b_seq = rng.integers(0, 256, size=(lanes, length))
        for index in range(lanes):
            a_name, b_name, count = lane.modes[modes[index]]
            a, b = get_format(a_name), get_format(b_name)
            sub_a = np.concatenate(_sub_codes(a_seq[index], a.bits, count))
            sub_b = np.concatenate(_sub_codes(b_seq[index], b.bits, count))
            fixed, _ = gemm_fixed(sub_a.reshape(1, -1), a, sub_b.reshape(-1, 1), b)
            want["acc"].append(int(fixed[0, 0]) << lane.alignment(int(modes[index])))
            want["special"].append(int(a.is_special(sub_a).any() or b.is_special(sub_b).any()))
            want["overflow"].append(0)
        step = np.arange(length)
        cols["a"].append(a_seq.T.reshape(-1))
        cols["b"].append(b_seq.T.reshape(-1))
        cols["mode"].append(np.tile(modes, length))
        cols["first"].append(np.repeat((step == 0).astype(np.int64), lanes))
        cols["last"].append(np.repeat((step == length - 1).astype(np.int64), lanes))
    inputs = {k: np.concatenate(v) for k, v in cols.items()}
    return inputs, {"acc": np.array(want["acc"], dtype=object), "special": np.array(want["special"]),
                    "overflow": np.array(want["overflow"])}


try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is in the rtl extra
    cocotb = None

if cocotb is not None:

    @cocotb.test()
    async def pe_bank(dut):
        """Every PE configuration of the bank: exhaustive products, then accumulation sequences."""
        from hwsim.formats import get_format
        from hwsim.rtl.configs import MULTI_PE_CONFIGS, PE_CONFIGS, build

        bank, wrong = load_bank(), mutants()
        lanes = bank["lanes"]
        names = [m["name"] for m in bank["members"]]
        multi = {name: build(name) for name in names if name in MULTI_PE_CONFIGS}
        cfgs = {name: PE_CONFIGS[wrong.get(name, name)] for name in names if name not in multi}
        seed = _seed()
        rng = np.random.default_rng(seed)
        dut._log.info("PE bank: %d members x %d lanes, seed %d", len(cfgs), lanes, seed)
        results = {name: {"config": wrong.get(name, name), "vectors": 0, "sequences": 0, "mismatches": 0,
                          "reported": [], "bins": {}} for name in names}
        await reset(dut)

        # exhaustive phase: one stimulus per input group, every group padded to the longest
        stimulus, expected, counts = {}, {}, {}
        longest = 0
        for group in _groups(bank, cfgs):
            first = group[0][1]
            zp_rows = _zero_points(get_format(first.a_format), rng, 256)
            zp_cols = _zero_points(get_format(first.b_format), rng, 256)
            for name, cfg in group:
                inputs, want, bins = _exhaustive(cfg, zp_rows, zp_cols)
                stimulus[name], expected[name], counts[name] = inputs, want, len(want["acc"])
                results[name]["bins"].update(bins)
            longest = max(longest, counts[group[0][0]])
        for name, lane in multi.items():
            stimulus[name], expected[name], bins = _multi_exhaustive(lane)
            counts[name] = len(stimulus[name]["a"])
            results[name]["bins"].update(bins)
            longest = max(longest, counts[name])
        total = longest + (-longest) % lanes
        padded = {name: {k: np.resize(v, total) for k, v in inputs.items()} for name, inputs in stimulus.items()}
        words = pack_bank(bank, padded)
        run = await drive_stream(dut, words, len(words), pattern="steady", rng=rng)
        got = unpack_bank(bank, run.beats)
        for name in names:
            bad, lines = _compare(name, got[name], expected[name], counts[name], stimulus[name],
                                  run.beat_cycles, lanes, dut._log, "vector")
            results[name]["vectors"] += counts[name]
            results[name]["exhaustive_vectors"] = counts[name]
            results[name]["mismatches"] += bad
            results[name]["reported"] += lines
        phases = {"exhaustive": {"cycles": run.cycles, "beats": len(run.beats), "seconds": run.seconds,
                                 "throughput_ok": run.cycles <= len(run.beats) + 4,
                                 "protocol_errors": run.protocol_errors}}

        # accumulate phase: shared sequence lengths (shared first/last), per-group operands
        batches = _batches(rng)
        stimulus, expected = {}, {}
        for group in _groups(bank, cfgs):
            inputs, sequences = _accumulate_stimulus([cfg for _, cfg in group], batches, lanes, rng)
            for name, cfg in group:
                stimulus[name] = inputs
                expected[name], bins = _accumulate_expected(cfg, sequences)
                results[name]["bins"].update(bins)
                results[name]["vectors"] += len(inputs["a"])
                results[name]["sequences"] = len(sequences)
        for name, lane in multi.items():
            stimulus[name], expected[name] = _multi_accumulate(lane, batches, lanes, rng)
            results[name]["vectors"] += len(stimulus[name]["a"])
            results[name]["sequences"] = len(expected[name]["acc"])
        words = pack_bank(bank, stimulus)
        beats = sum(1 for _, length in batches)
        run = await drive_stream(dut, words, beats, pattern="both", rng=rng)
        got = unpack_bank(bank, run.beats)
        for name in names:
            count = len(expected[name]["acc"])
            ends = np.flatnonzero(stimulus[name]["last"])
            info = {"sequence_end_vector": ends, "length": np.repeat([n for _, n in batches], lanes)}
            bad, lines = _compare(name, got[name], expected[name], count, info, run.beat_cycles, lanes,
                                  dut._log, "sequence")
            results[name]["mismatches"] += bad
            results[name]["reported"] += lines
        phases["accumulate"] = {"cycles": run.cycles, "beats": len(run.beats), "seconds": run.seconds,
                                "idle_cycles": run.idle_cycles, "stall_cycles": run.stall_cycles,
                                "protocol_errors": run.protocol_errors}
        write_summary({"seed": seed, "lanes": lanes, "members": results, "phases": phases})
        for name, result in results.items():
            dut._log.info("%s: %d vectors, %d mismatches", name, result["vectors"], result["mismatches"])
        assert not phases["exhaustive"]["protocol_errors"] and not phases["accumulate"]["protocol_errors"]
        failing = [name for name, r in results.items() if r["mismatches"] and name not in wrong]
        assert not failing, [results[name]["reported"][:2] for name in failing]


# ---------------------------------------------------------------------------- pytest side
def _expected_bins(cfg, test: str) -> list[str]:
    from hwsim.formats import get_format

    a, b = get_format(cfg.a_format), get_format(cfg.b_format)
    if test == "accumulate":
        acc = _acc_spec(cfg)
        names = []
        if acc is not None and acc.bits < 32:
            names = ["overflow", "saturate_hi", "saturate_lo"] if acc.overflow == "saturate" else ["overflow", "wrap"]
        if a.has_nan or b.has_nan or a.has_inf or b.has_inf:
            names.append("special_sequence")
        return names
    names = ["product_zero"]
    for prefix, fmt in (("a", a), ("b", b)):
        names += [f"{prefix}_max", f"{prefix}_min"]
        names.append(f"{prefix}_alpha" if fmt.kind == "dint" else f"{prefix}_zero")
        if fmt.kind == "float":
            names.append(f"{prefix}_subnormal")
            if fmt.has_nan:
                names.append(f"{prefix}_nan")
            if fmt.has_inf:
                names.append(f"{prefix}_inf")
    return names


def _mutant_pe():
    """int8 x int8 PE whose product has bit 0 flipped for the single operand pair (3, -5)."""
    from hwsim.gemm import AccumulatorSpec
    from hwsim.rtl.pe import PE

    class FlippedProductPE(PE):
        def _aligned_product(self, sa, sb, ea, eb):
            return super()._aligned_product(sa, sb, ea, eb) ^ ((sa == 3) & (sb == -5))

    return FlippedProductPE("int8", "int8", AccumulatorSpec(bits=32))


@functools.cache
def _bank_summary() -> dict:
    """Build the PE bank (every configuration + the mutant) once and run it once per session."""
    from sim_harness import build, run

    from hwsim.rtl.configs import MULTI_PE_CONFIGS, PE_CONFIGS
    from hwsim.rtl.configs import build as build_config

    members = {name: cfg.build() for name, cfg in PE_CONFIGS.items()}
    members.update({name: build_config(name) for name in MULTI_PE_CONFIGS})
    members[MUTANT] = _mutant_pe()
    build_dir = build(f"pe_bank_x{LANES}", members, LANES)
    return run(build_dir, "test_pe_cocotb", "pe_bank", {"HWSIM_MUTANTS": f"{MUTANT}:int8xint8"}, label="pe_bank")


def _config_names():
    try:
        from hwsim.rtl.configs import PE_CONFIGS
    except ImportError:  # pragma: no cover
        return []
    return list(PE_CONFIGS)


def test_pe_bank_streams():
    """One vector per lane per cycle when never stalled; idle and back-pressure cycles exercised."""
    pytest.importorskip("cocotb")
    summary = _bank_summary()
    phases = summary["phases"]
    assert phases["exhaustive"]["throughput_ok"], phases["exhaustive"]
    assert phases["accumulate"]["idle_cycles"] > 0 and phases["accumulate"]["stall_cycles"] > 0
    assert not phases["exhaustive"]["protocol_errors"] and not phases["accumulate"]["protocol_errors"]


@pytest.mark.parametrize("config", _config_names())
def test_pe_verilator(config):
    """Exhaustive products and accumulation sequences of one PE configuration match hwsim.gemm."""
    pytest.importorskip("cocotb")
    from hwsim.formats import get_format
    from hwsim.rtl.configs import PE_CONFIGS

    result = _bank_summary()["members"][config]
    assert result["mismatches"] == 0, result["reported"][:3]
    cfg = PE_CONFIGS[config]
    a, b = get_format(cfg.a_format), get_format(cfg.b_format)
    assert result["exhaustive_vectors"] == (1 << a.bits) * (1 << b.bits)
    missing = [name for name in _expected_bins(cfg, "exhaustive") + _expected_bins(cfg, "accumulate")
               if result["bins"].get(name, 0) == 0]
    assert not missing, f"coverage bins not hit: {missing}"


def test_pe_mutant_is_caught():
    """A PE with one wrong product among 65,536 fails the exhaustive scoreboard at exactly that pair."""
    pytest.importorskip("cocotb")
    result = _bank_summary()["members"][MUTANT]
    assert result["exhaustive_vectors"] == 65536
    assert result["mismatches"] >= 1
    assert "'a': 3, 'b': 251" in result["reported"][0]


def _multi_names():
    try:
        from hwsim.rtl.configs import MULTI_PE_CONFIGS
    except ImportError:  # pragma: no cover
        return []
    return list(MULTI_PE_CONFIGS)


@pytest.mark.parametrize("config", _multi_names())
def test_multi_precision_pe_verilator(config):
    """Every operand-word pair in every mode, and per-lane-mode sequences, match hwsim.gemm."""
    pytest.importorskip("cocotb")
    from hwsim.rtl.configs import MULTI_PE_CONFIGS

    result = _bank_summary()["members"][config]
    assert result["mismatches"] == 0, result["reported"][:3]
    modes = MULTI_PE_CONFIGS[config]
    assert result["exhaustive_vectors"] == 65536 * len(modes)
    for mode, (a_name, _) in enumerate(modes):
        assert result["bins"][f"mode{mode}_vectors"] == 65536
        assert result["bins"][f"mode{mode}_zero_sum"] > 0
        if a_name.startswith("float8"):
            assert result["bins"][f"mode{mode}_special"] > 0
