"""Integer LayerNorm/RMSNorm unit in the performance model: energy and cycles recomputed by hand from
``hwsim.layernorm.norm_op_counts`` and the raw YAML table; float mode; layernorm key validation."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from hwsim.errors import ConfigError
from hwsim.layernorm import IntNormSpec, norm_op_counts
from hwsim.perf.api import simulate
from hwsim.perf.arch import DEFAULT_NEWTON_ITERATIONS, arch_from_dict, default_arch
from hwsim.perf.workload import GemmOp, NormOp

TABLE_PATH = Path(__file__).resolve().parents[2] / "hwsim" / "data" / "energy_45nm.yaml"


def _arch(layernorm, **over):
    base = {"array": {"rows": 16, "cols": 16, "dataflow": "ws"},
            "pe": {"weight_format": "int8", "activation_format": "int8", "accumulator_bits": 24},
            "buffers": {"ifmap": {"size_kib": 256}, "weight": {"size_kib": 256},
                        "ofmap": {"size_kib": 128, "word_bits": 32}},
            "dram": {"bandwidth_bytes_per_cycle": 1e9, "latency_cycles": 0},
            "requant": {"lanes": 16, "latency": 0, "multiplier_bits": 16},
            "vector": {"lanes": 16, "latency": 4, "format": "float16"},
            "layernorm": layernorm}
    base.update(over)
    return arch_from_dict(base)


# Widths from hwsim/layernorm.py's datapath table (W_x = 16): d = x - mu, S2 = sum d^2 accumulator,
# r = round(C 2^24 / sigma) with C = round(sqrt(N) 2^16), z = (x - mu)/std with 12 fractional bits.
#   LayerNorm N=384: d 17, S2 2*17+9 = 43, C < 2^21 -> r 45, z 12+5+1 = 18 (the documented example)
#   RMSNorm   N=576: d 16, S2 2*16+10 = 42, C = 24*2^16 < 2^21 -> r 45, z 12+5+1 = 18
CASES = [("layernorm", 384, 7, 2, {"d": 17, "s2": 43, "r": 45, "z": 18}),
         ("rmsnorm", 576, 5, 3, {"d": 16, "s2": 42, "r": 45, "z": 18})]


@pytest.mark.parametrize("kind,cols,rows,count,w", CASES, ids=[c[0] for c in CASES])
def test_integer_norm_energy_recomputed_by_hand(kind, cols, rows, count, w):
    raw = yaml.safe_load(TABLE_PATH.read_text())
    t, rec = raw["components"], raw["recipes"]
    add32, mul32 = t["int_add"]["op_pj"], t["int_mult"]["op_pj"]
    arch = _arch({"lanes": 16, "latency": 4, "newton_iterations": 5})  # integer is the default
    row = simulate([NormOp(name="ln", kind=kind, rows=rows, cols=cols, count=count)], arch).to_frame().iloc[0]
    ops = norm_op_counts(cols, kind, newton_iterations=5)
    n_rows = rows * count
    for key, col in (("add", "norm_adds"), ("mult", "norm_mults"), ("shift", "norm_shifts"),
                     ("div", "norm_divides"), ("requant", "norm_requants")):
        assert row[col] == n_rows * ops[key]
    add = add32 * w["s2"] / 32  # adders sized for the S2 accumulator
    mult = mul32 * (w["d"] * w["d"] + w["d"] * w["r"] + w["z"] * 16) / 32**2 / 3  # gamma x 16-bit multiplier
    div_bits = max(w["s2"], w["r"])
    div = div_bits * rec["int_divide"]["subtracts_per_quotient_bit"] * add32 * div_bits / 32
    r = rec["requant"]  # accumulator 24 bits x multiplier 16 bits, then adds at 24 and 32 bits
    requant = (r["multiplies"] * mul32 * 24 * 16 / 32**2 + r["shift_adds"] * add32 * 24 / 32
               + (r["adds"] + r["clamp_adds"]) * add32)
    per_row = ((ops["add"] + ops["shift"]) * add + ops["mult"] * mult + ops["div"] * div
               + ops["requant"] * requant)
    assert row["energy_norm_pj"] == pytest.approx(n_rows * per_row)
    assert row["energy_vector_pj"] == 0 and row["energy_requant_pj"] == 0 and row["energy_mac_pj"] == 0


def test_user_table_without_int_divide_uses_one_subtract_per_bit(tmp_path):
    data = yaml.safe_load(TABLE_PATH.read_text())
    assert data["recipes"]["int_divide"] == {"subtracts_per_quotient_bit": 1}
    del data["recipes"]["int_divide"]
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(data))
    wl = [NormOp(name="ln", kind="layernorm", rows=4, cols=384)]
    arch = _arch({"lanes": 16})
    assert simulate(wl, arch, energy_table=tmp_path / "old.yaml").energy.norm == pytest.approx(
        simulate(wl, arch).energy.norm)
    data["recipes"]["int_divide"] = {"subtracts_per_quotient_bit": 2}
    (tmp_path / "radix.yaml").write_text(yaml.safe_dump(data))
    base, doubled = (simulate(wl, arch, energy_table=tmp_path / p).energy.norm for p in ("old.yaml", "radix.yaml"))
    divides = norm_op_counts(384, "layernorm", newton_iterations=DEFAULT_NEWTON_ITERATIONS)["div"]
    add45 = data["components"]["int_add"]["op_pj"] * 45 / 32
    assert doubled - base == pytest.approx(4 * divides * 45 * add45)  # 4 rows x divides x 45 more 45-bit subs


@pytest.mark.parametrize("div_latency,dividers,bound", [(10, 1, "stream"), (30, 1, "divider"), (30, 2, "divider"),
                                                         (100, 7, "divider"), (30, 4, "stream")])
def test_integer_norm_cycles_by_hand(div_latency, dividers, bound):
    unit = {"lanes": 16, "latency": 4, "newton_iterations": 4, "div_latency": div_latency, "dividers": dividers}
    arch = _arch(unit)
    rows, cols = 50, 384
    c = simulate([NormOp(name="ln", kind="layernorm", rows=rows, cols=cols)], arch).layers[0].counts
    divides = norm_op_counts(cols, "layernorm", newton_iterations=4)["div"]
    assert divides == 1 + 4 + 1  # mean, Newton steps, reciprocal
    stream = 3 * math.ceil(cols / 16)  # sum; squared deviations; normalise
    first = stream + divides * div_latency + 4
    assert first == IntNormSpec(lanes=16, div_latency=div_latency, newton_iterations=4, pipeline=4).latency(cols)
    interval = max(stream, divides * div_latency / dividers)
    assert (interval == stream) == (bound == "stream")
    assert c.compute_cycles == first + math.ceil((rows - 1) * interval - 1e-9)
    assert c.total_cycles == c.compute_cycles  # resident in SRAM, no DRAM
    assert c.sram_ifmap_reads == 3 * rows * cols
    one = simulate([NormOp(name="ln", kind="rmsnorm", rows=1, cols=cols)], arch).layers[0].counts
    assert one.compute_cycles == IntNormSpec(lanes=16, div_latency=div_latency, newton_iterations=4,
                                             pipeline=4).latency(cols, "rmsnorm")
    three = simulate([NormOp(name="ln", kind="layernorm", rows=rows, cols=cols, count=3)], arch).layers[0].counts
    assert three.compute_cycles == 3 * c.compute_cycles and three.norm_divides == 3 * rows * divides


def test_float_mode_keeps_float_recipe():
    t = yaml.safe_load(TABLE_PATH.read_text())
    comp, rec = t["components"], t["recipes"]
    arch = _arch({"lanes": 8, "latency": 3, "passes": 2, "arithmetic": "float"})
    wl = [NormOp(name="ln", kind="layernorm", rows=10, cols=20), NormOp(name="rms", kind="rmsnorm", rows=6, cols=40),
          GemmOp(name="g", m=32, k=32, n=32)]
    res = simulate(wl, arch)
    ln, rms, gemm = (layer.counts for layer in res.layers)
    assert ln.compute_cycles == 2 * 10 * math.ceil(20 / 8) + 3 and ln.sram_ifmap_reads == 2 * 200
    assert ln.norm_adds == ln.norm_mults == ln.norm_divides == ln.norm_requants == 0
    fadd = comp["fp_add"]["op_pj"] * 11 / 24  # float16: 11-bit significand, 5-bit exponent
    fmul = comp["fp_mult"]["op_pj"] * 11 * 11 / 24**2 + comp["int_add"]["op_pj"] * 5 / 32
    div = rec["divide"]["fp_mult"] * fmul + rec["divide"]["fp_add"] * fadd
    sqrt = rec["sqrt_iterations"] * (rec["sqrt_iteration"]["fp_mult"] * fmul + rec["sqrt_iteration"]["fp_add"] * fadd)
    # LayerNorm: per element 3 adds + 2 mults, per row 2 adds + 1 mult + divide + sqrt; RMSNorm 1 + 2, 1 + 1
    assert res.layers[0].energy.norm == pytest.approx(200 * (3 * fadd + 2 * fmul) + 10 * (2 * fadd + fmul + div + sqrt))
    assert res.layers[1].energy.norm == pytest.approx(240 * (fadd + 2 * fmul) + 6 * (fadd + fmul + div + sqrt))
    integer = simulate(wl, _arch({"lanes": 8, "latency": 3, "passes": 2}))
    assert integer.layers[2].energy == res.layers[2].energy  # only norm ops depend on the norm arithmetic
    assert integer.layers[0].energy.norm != pytest.approx(res.layers[0].energy.norm)
    assert gemm.total_cycles == integer.layers[2].counts.total_cycles


def test_bad_layernorm_keys_reported_with_paths():
    with pytest.raises(ConfigError) as err:
        _arch({"lane": 4, "arithmetic": "fixed", "newton_iterations": 0, "div_latency": -3, "dividers": 1.5})
    problems = err.value.problems
    assert sorted(p.split(":")[0] for p in problems) == [
        "arch.layernorm.arithmetic", "arch.layernorm.div_latency", "arch.layernorm.dividers",
        "arch.layernorm.lane", "arch.layernorm.newton_iterations"]
    text = "\n".join(problems)
    assert "['integer', 'float']" in text and "'fixed'" in text and "did you mean 'lanes'" in text
    assert "-3" in text and "1.5" in text


def test_defaults_integer_with_worst_case_newton_budget():
    unit = default_arch().layernorm
    assert (unit.arithmetic, unit.newton_iterations, unit.dividers) == ("integer", DEFAULT_NEWTON_ITERATIONS, 1)
    assert arch_from_dict({"array": {"rows": 4, "cols": 4}}).layernorm.arithmetic == "integer"
    # The golden isqrt's start value 2**ceil(bits/2) with a fixed budget of iterations x = min(x, (x + n//x)//2):
    # the default budget gives floor(sqrt(n)) for every sampled S2 below 2**49 (its accumulator is 48 bits),
    # one iteration fewer does not.
    rng = np.random.default_rng(5)

    def fixed_budget(n, iterations):
        bits = np.floor(np.log2(n.astype(np.float64))).astype(np.int64) + 1
        x = np.int64(1) << ((bits + 1) // 2)
        for _ in range(iterations):
            x = np.minimum(x, (x + n // x) // 2)
        return x

    misses = {}
    for b in (25, 33, 41, 43, 47, 49):
        lo = 1 << (b - 1)
        n = np.concatenate([lo + np.arange(3000, dtype=np.int64), rng.integers(lo, 2 * lo, 3000, dtype=np.int64)])
        ref = np.array([math.isqrt(int(v)) for v in n], np.int64)
        assert np.array_equal(fixed_budget(n, DEFAULT_NEWTON_ITERATIONS), ref), b
        misses[b] = int(np.count_nonzero(fixed_budget(n, DEFAULT_NEWTON_ITERATIONS - 1) != ref))
    assert misses[43] > 0 and misses[49] > 0
