# amaranth: UnusedElaboratable=no
"""Quick amaranth.sim checks of the RTL generators (no Verilator): construction, widths, latency,
short scenarios against the hwsim golden functions, stream back-pressure."""

from __future__ import annotations

import numpy as np
import pytest

amaranth = pytest.importorskip("amaranth")

from amaranth.sim import Simulator  # noqa: E402

from hwsim.formats import get_format  # noqa: E402
from hwsim.gemm import AccumulatorSpec, gemm_ex, gemm_fixed, mac_product_fixed  # noqa: E402
from hwsim.requant import RequantSpec  # noqa: E402
from hwsim.rtl.configs import (  # noqa: E402
    MULTI_PE_CONFIGS,
    NORM_CONFIGS,
    PE_CONFIGS,
    REQUANT_CONFIGS,
    TILE_CONFIGS,
    build,
    config_names,
)
from hwsim.rtl.pe import PE  # noqa: E402
from hwsim.rtl.requant_unit import Requant  # noqa: E402


def _stream(dut, payloads, *, stall_every=0, cycles_after=8):
    """Drive ``payloads`` on ``dut.i``; return (output payloads, cycle of each output transfer)."""
    out, when = [], []

    async def driver(ctx):
        for payload in payloads:
            ctx.set(dut.i.payload, payload)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        cycle = 0
        async for _clk, _rst, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            ready = not (stall_every and cycle % stall_every == 0)
            if valid and ctx.get(dut.o.ready):
                out.append(payload)
                when.append(cycle)
            ctx.set(dut.o.ready, ready)
            cycle += 1

    async def timeout(ctx):
        await ctx.tick().repeat(len(payloads) * (3 if stall_every else 1) + cycles_after + 10)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(timeout)
    sim.run()
    return out, when


# ----------------------------------------------------------------------------------------- PE
def test_pe_init():
    dut = PE("float8_e4m3fn", "float8_e5m2", 63)
    assert dut.latency == 3
    assert dut.acc_bits == 63 and dut.overflow_mode == "wrap"
    assert dut.lsb_exponent == get_format("float8_e4m3fn").lsb_exponent + get_format("float8_e5m2").lsb_exponent
    assert [name for name, _ in dut.in_layout] == ["a", "b", "first", "last"]
    assert [name for name, _ in dut.out_layout] == ["acc", "special", "overflow"]
    # uint8 operands take a runtime zero point
    assert [name for name, _ in PE("uint8", "int8", AccumulatorSpec()).in_layout] == ["a", "b", "a_zp", "first",
                                                                                      "last"]


def test_pe_init_wrong_format():
    with pytest.raises(ValueError, match="the PE multiplies int, dint and float formats, not 'codebook'"):
        PE("nf4", "int8", 32)


def test_pe_init_wrong_accumulator():
    with pytest.raises(TypeError, match="accumulator must be an AccumulatorSpec or a bit width >= 2, not 'x'"):
        PE("int8", "int8", "x")


@pytest.mark.parametrize("config", ["int8xint8", "uint8xint8", "dint4xint8", "fp4xfp4", "e4m3xe5m2"])
def test_pe_products(config):
    """Random single products (first = last = 1) equal hwsim.gemm.mac_product_fixed."""
    cfg = PE_CONFIGS[config]
    dut = cfg.build()
    a, b = get_format(cfg.a_format), get_format(cfg.b_format)
    rng = np.random.default_rng(7)
    codes_a = rng.integers(0, 1 << a.bits, 40)
    codes_b = rng.integers(0, 1 << b.bits, 40)
    zp = rng.integers(0, 1 << a.bits, 40) if "a_zp" in dict(dut.in_layout) else np.zeros(40, np.int64)
    payloads = [{"a": int(x), "b": int(y), "first": 1, "last": 1, **({"a_zp": int(z)} if z else {})}
                for x, y, z in zip(codes_a, codes_b, zp, strict=True)]
    out, _ = _stream(dut, payloads)
    expected, _ = mac_product_fixed(codes_a, a, codes_b, b, a_zero_point=zp)
    assert [p.acc for p in out] == [int(v) for v in expected]
    assert [p.special for p in out] == [int(s) for s in (a.is_special(codes_a) | b.is_special(codes_b))]


def test_pe_latency():
    """The first output appears ``latency`` cycles after the input handshake."""
    dut = PE("int8", "int8", AccumulatorSpec())
    _, when = _stream(dut, [{"a": 3, "b": 4, "first": 1, "last": 1}])
    # the input transfers at the first edge (monitor cycle 0); the output `latency` edges later
    assert when == [dut.latency]


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_pe_accumulate_with_backpressure(overflow):
    """One sum emitted twice (``last`` at elements 29 and 59, no restart) overflowing a 20-bit register
    after element 31, with the output stalled every other cycle."""
    acc = AccumulatorSpec(bits=20, overflow=overflow)
    dut = PE("int8", "int8", acc)
    rng = np.random.default_rng(3)
    a = np.concatenate([np.full(40, 0x80), rng.integers(0, 256, 20)])  # -128 * -128 runs, then random
    b = np.concatenate([np.full(40, 0x80), rng.integers(0, 256, 20)])
    payloads = [{"a": int(x), "b": int(y), "first": int(k == 0), "last": int(k in (29, 59))}
                for k, (x, y) in enumerate(zip(a, b, strict=True))]
    out, _ = _stream(dut, payloads, stall_every=2)
    first = gemm_ex(a[None, :30], "int8", b[:30, None], "int8", accumulator=acc)
    whole = gemm_ex(a[None, :], "int8", b[:, None], "int8", accumulator=acc)
    assert [p.acc for p in out] == [int(first.values[0, 0]), int(whole.values[0, 0])]
    assert [p.overflow for p in out] == [int(first.overflow_events > 0), int(whole.overflow_events > 0)]


def test_pe_exact_float_accumulation():
    dut = build("e5m2xe5m2")
    rng = np.random.default_rng(11)
    a = rng.integers(0, 256, 50)
    b = rng.integers(0, 256, 50)
    payloads = [{"a": int(x), "b": int(y), "first": int(k == 0), "last": int(k == 49)}
                for k, (x, y) in enumerate(zip(a, b, strict=True))]
    out, _ = _stream(dut, payloads)
    fixed, _ = gemm_fixed(a[None, :], "float8_e5m2", b[:, None], "float8_e5m2")
    assert [p.acc for p in out] == [int(fixed[0, 0])]
    assert out[0].special == int(get_format("float8_e5m2").is_special(np.concatenate([a, b])).any())


# ------------------------------------------------------------------------------------ requant
def test_requant_init():
    dut = Requant(RequantSpec(multiplier_bits=16, rounding="rne", out_format="int4"))
    assert dut.latency == 3
    widths = {name: field.width for name, field in dut.in_layout}
    assert widths == {"acc": 32, "multiplier": 15, "shift": 7, "zero_point": 5}
    assert dut.out_layout["code"].width == 4


def test_requant_init_wrong_spec():
    with pytest.raises(TypeError, match="spec must be a hwsim.requant.RequantSpec, not 'rne'"):
        Requant("rne")
    with pytest.raises(ValueError, match="the requant unit saturates to integer formats, not 'float8_e4m3fn'"):
        Requant(RequantSpec(out_format="float8_e4m3fn"))


@pytest.mark.parametrize("config", sorted(REQUANT_CONFIGS))
def test_requant_vectors(config):
    """Random vectors and exact ties equal hwsim.requant.requantize, with back-pressure."""
    spec = REQUANT_CONFIGS[config]
    dut = Requant(spec)
    out_fmt = get_format(spec.out_format)
    bits = spec.multiplier_bits
    rng = np.random.default_rng(5)
    n = 48
    acc = rng.integers(-(1 << 31), 1 << 31, n)
    acc[:16] = (2 * rng.integers(-50, 50, 16) + 1) << 3  # ties at shift -4 with M = 1
    mult = rng.integers(1 << (bits - 2), 1 << (bits - 1), n)
    mult[:16] = 1
    shift = rng.integers(max(spec.shift_range[0], -62), 1, n)
    shift[:16] = -4
    zp = rng.integers(out_fmt.lo, out_fmt.hi + 1, n)
    payloads = [{"acc": int(a), "multiplier": int(m), "shift": int(s), "zero_point": int(z)}
                for a, m, s, z in zip(acc, mult, shift, zp, strict=True)]
    out, _ = _stream(dut, payloads, stall_every=3)
    expected = out_fmt.int_to_code(spec.apply(acc, mult, shift, zp))
    assert [p.code for p in out] == [int(v) for v in expected]


def test_config_names_build():
    families = (PE_CONFIGS, MULTI_PE_CONFIGS, REQUANT_CONFIGS, TILE_CONFIGS, NORM_CONFIGS)
    assert len(config_names()) == sum(len(family) for family in families)
    with pytest.raises(ValueError, match="unknown RTL configuration .* not 'nope'"):
        build("nope")


# ------------------------------------------------------------------------- multi-precision PE
def test_multi_precision_pe_init():
    from hwsim.rtl.multi_pe import MultiPrecisionPE

    dut = MultiPrecisionPE((("int8", "int8"), ("int4", "int4"), ("float8_e4m3fn", "float8_e4m3fn")))
    assert dut.modes == [("int8", "int8", 1), ("int4", "int4", 2), ("float8_e4m3fn", "float8_e4m3fn", 1)]
    assert dut.lsb_exponent == 2 * get_format("float8_e4m3fn").lsb_exponent
    assert [dut.alignment(m) for m in range(3)] == [18, 18, 0]
    assert dut.in_layout["mode"].width == 2 and dut.latency == 3


def test_multi_precision_pe_init_wrong_mode():
    from hwsim.rtl.multi_pe import MultiPrecisionPE

    with pytest.raises(ValueError, match=r"equal widths dividing 8 bits, not \('int4', 'int8'\)"):
        MultiPrecisionPE((("int4", "int8"),))


def test_multi_precision_pe_modes():
    """A sequence per mode (packed sub-elements) equals gemm_fixed over the unpacked elements."""
    dut = build("mp_int8_2xint4_e4m3_2xfp4")
    rng = np.random.default_rng(9)
    sequences = [(mode, rng.integers(0, 256, 6), rng.integers(0, 256, 6)) for mode in range(4)]
    payloads = [{"a": int(a[k]), "b": int(b[k]), "mode": mode, "first": int(k == 0), "last": int(k == 5)}
                for mode, a, b in sequences for k in range(6)]
    out, _ = _stream(dut, payloads, stall_every=4)
    expected = []
    for mode, a, b in sequences:
        a_name, b_name, count = dut.modes[mode]
        bits = get_format(a_name).bits
        sub_a = np.concatenate([(a >> (j * bits)) & ((1 << bits) - 1) for j in range(count)])
        sub_b = np.concatenate([(b >> (j * bits)) & ((1 << bits) - 1) for j in range(count)])
        fixed, _ = gemm_fixed(sub_a[None, :], a_name, sub_b[:, None], b_name)
        expected.append(int(fixed[0, 0]) << dut.alignment(mode))
    assert [p.acc for p in out] == expected


def test_requant_latency_is_the_one_the_cycle_model_charges():
    from hwsim.perf.arch import arch_from_dict, default_arch
    from hwsim.requant import REQUANT_LATENCY, RequantSpec
    from hwsim.rtl.requant_unit import Requant

    spec = RequantSpec(multiplier_bits=16, rounding="rne", out_format="int8")
    assert Requant(spec).latency == spec.latency == REQUANT_LATENCY
    assert default_arch().requant.latency == REQUANT_LATENCY
    assert arch_from_dict({"array": {"rows": 4, "cols": 4}}).requant.latency == REQUANT_LATENCY
