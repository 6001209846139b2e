"""Integer softmax / GELU / SiLU / SwiGLU / RoPE / mean-pool kernels: float error bounds and a scalar
Python-int reference bit for bit."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import int_activations as ia
from hwsim import int_softmax as ism
from hwsim.errors import ConfigError
from hwsim.fixed_point import fixed_multiplier
from hwsim.float_executor import gelu, rope, silu, softmax
from hwsim.formats import get_format
from hwsim.int_pool import integer_mean_pool
from hwsim.int_rope import integer_rope, rope_error_bound, rope_tables
from hwsim.ptq import load_recipe

I16 = get_format("int16")


# -- scalar Python-int references (written independently of the vectorised kernels) -------------------
def rsr(x: int, s: int) -> int:
    """Round half away from zero right shift of a Python int."""
    if s <= 0:
        return x << -s
    mag = (abs(x) + (1 << (s - 1))) >> s
    return -mag if x < 0 else mag


def mult(x: int, real: float) -> int:
    fm = fixed_multiplier(real)
    return rsr(x * fm.m, fm.shift)


def sat(v: int, fmt: str) -> int:
    f = get_format(fmt)
    return min(max(v, f.lo), f.hi)


def ref_softmax_row(row, keep, p) -> list[int]:
    kept = [x for x, k in zip(row, keep, strict=True) if k]
    if not kept:
        return [0] * len(row)
    mx = max(kept)
    es = []
    for x, k in zip(row, keep, strict=True):
        if not k:
            es.append(0)
            continue
        u = min(rsr((mx - x) * p.multiplier, p.shift), (ism.F_E + 1) << ism.F_T)
        z, f = u >> ism.F_T, u & ((1 << ism.F_T) - 1)
        if p.exp == "poly":
            v = rsr((f - ism.B_FX) * (f - ism.B_FX) * ism.A_FX, 2 * ism.F_T + 16 - ism.F_E) + ism.C_FX
        else:
            v = int(ism.exp2_table(p.table_bits)[f >> (ism.F_T - p.table_bits)])
        es.append((v + ((1 << (z - 1)) if z else 0)) >> z)
    r = (1 << (ism.F_E + p.out_bits + ism.G)) // max(sum(es), 1)
    return [min(rsr(e * r, ism.F_E + ism.G), (1 << p.out_bits) - 1) for e in es]


def ref_q12(q: int, scale: float) -> int:
    return min(max(mult(q, scale * 2**ia.F_X), -ia.U_MAX), ia.U_MAX)


def ref_gelu(q, s_in, s_out, fmt, zp) -> int:
    u = ref_q12(q, s_in / math.sqrt(2))
    c = min(abs(u), ia.B_FX) - ia.B_FX
    mag = (1 << 24) + rsr(c * c * ia.A_FX, 16)
    erf = -mag if u < 0 else mag
    return sat(mult(u * ((1 << 24) + erf), math.sqrt(2) / (2.0**37 * s_out)) + zp, fmt)


def ref_sigmoid(u: int, k: int = 8) -> int:
    t = [int(v) for v in ia.sigmoid_table(k)]
    fb = 16 - k
    a = min(abs(u), (1 << 16) - 1)
    i, fr = a >> fb, a & ((1 << fb) - 1)
    s = t[i] + rsr((t[i + 1] - t[i]) * fr, fb)
    return (1 << 16) - s if u < 0 else s


# -- softmax ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("exp", ["poly", "table"])
@pytest.mark.parametrize("bits", [8, 16])
def test_softmax_within_bound_of_float(exp, bits):
    rng = np.random.default_rng(1)
    q = rng.integers(-4000, 4000, (50, 37))
    keep = rng.random((50, 37)) > 0.2
    keep[:, 0] = True
    p = ism.calibrate_softmax(0.004, bits, exp)
    got = ism.integer_softmax(q, p, keep) / 2**bits
    ref = softmax(np.where(keep, q * 0.004, -np.inf))
    assert np.max(np.abs(got - ref)) <= ism.error_bound(p)
    assert np.all(got[~keep] == 0)


def test_softmax_bound_is_tight_enough_to_fail():
    p = ism.calibrate_softmax(0.004, 8, "table", table_bits=2)
    rng = np.random.default_rng(2)
    q = rng.integers(-400, 400, (50, 8))
    err = np.max(np.abs(ism.integer_softmax(q, p) / 256 - softmax(q * 0.004)))
    assert err > ism.error_bound(ism.calibrate_softmax(0.004, 16, "poly"))


@settings(max_examples=60, deadline=None)
@given(row=st.lists(st.integers(-32768, 32767), min_size=1, max_size=12),
       scale=st.floats(1e-4, 0.5), exp=st.sampled_from(["poly", "table"]), bits=st.sampled_from([8, 16]),
       k=st.integers(1, 12), data=st.data())
def test_softmax_bit_exact_vs_scalar(row, scale, exp, bits, k, data):
    keep = data.draw(st.lists(st.booleans(), min_size=len(row), max_size=len(row)))
    p = ism.calibrate_softmax(scale, bits, exp, table_bits=k)
    got = ism.integer_softmax(np.array([row]), p, np.array([keep]))[0].tolist()
    assert got == ref_softmax_row(row, keep, p)


def test_softmax_rejects_bad_widths():
    with pytest.raises(ValueError, match="out_bits"):
        ism.calibrate_softmax(0.01, 12)
    with pytest.raises(ValueError, match="exp"):
        ism.calibrate_softmax(0.01, 8, "cordic")


# -- GELU / SiLU / SwiGLU ---------------------------------------------------------------------------
def test_gelu_and_silu_within_bound_of_float():
    rng = np.random.default_rng(3)
    q = rng.integers(-32768, 32768, 20000)
    s, so = 8 / 32767, 0.02
    x = q * s
    y = I16.code_to_int(ia.integer_gelu(q, s, so, "int16"))
    assert np.all(np.abs(y - gelu(x) / so) <= ia.gelu_error_bound(x, so))
    y = I16.code_to_int(ia.integer_silu(q, s, so, "int16"))
    assert np.all(np.abs(y - silu(x) / so) <= ia.silu_error_bound(x, so))
    up = rng.integers(-32768, 32768, 20000)
    y = I16.code_to_int(ia.integer_swiglu(q, s, up, 3 / 32767, 0.05, "int16"))
    ref = silu(x) * up * 3 / 32767 / 0.05
    assert np.all(np.abs(y - ref) <= ia.silu_error_bound(x, 0.05) * np.abs(up) * 3 / 32767 + 1.0)


def test_gelu_unsigned_output():
    q = np.arange(-127, 128)
    s, so, zp = 0.05, 6.5 / 255, 7
    y = ia.integer_gelu(q, s, so, "uint8", zp).astype(np.int64) - zp
    assert np.all(np.abs(y - gelu(q * s) / so) <= ia.gelu_error_bound(q * s, so))


@settings(max_examples=200, deadline=None)
@given(q=st.integers(-32768, 32767), s_in=st.floats(1e-4, 0.1), s_out=st.floats(1e-3, 1.0),
       zp=st.integers(0, 20))
def test_gelu_silu_bit_exact_vs_scalar(q, s_in, s_out, zp):
    assert int(ia.integer_gelu(np.array([q]), s_in, s_out, "uint16", zp)[0]) == ref_gelu(q, s_in, s_out, "uint16", zp)
    u = ref_q12(q, s_in)
    want = sat(mult(u * ref_sigmoid(u), 2.0**-28 / s_out), "int16")
    assert int(I16.code_to_int(ia.integer_silu(np.array([q]), s_in, s_out, "int16"))[0]) == want


@settings(max_examples=100, deadline=None)
@given(g=st.integers(-32768, 32767), up=st.integers(-127, 127), s_g=st.floats(1e-4, 0.1),
       s_up=st.floats(1e-3, 1.0), s_out=st.floats(1e-3, 1.0))
def test_swiglu_bit_exact_vs_scalar(g, up, s_g, s_up, s_out):
    u = ref_q12(g, s_g)
    want = sat(mult(rsr(u * ref_sigmoid(u), 16) * up, s_up * 2.0**-12 / s_out), "int8")
    got = ia.integer_swiglu(np.array([g]), s_g, np.array([up]), s_up, s_out, "int8")
    assert int(get_format("int8").code_to_int(got)[0]) == want


# -- RoPE -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16])
def test_rope_within_bound_of_float(bits):
    rng = np.random.default_rng(4)
    q = rng.integers(-127, 128, (2, 3, 17, 64))
    s, so = 0.05, 0.08
    y = get_format("int8").code_to_int(integer_rope(q, s, so, "int8", base=10000.0, bits=bits))
    ref = rope(q * s, base=10000.0)
    pair = np.repeat(np.maximum(np.abs(q[..., 0::2]), np.abs(q[..., 1::2])) * s, 2, axis=-1)
    assert np.all(np.abs(y - ref / so) <= rope_error_bound(pair, np.abs(ref), so, bits))


def test_rope16_closer_than_rope8():
    rng = np.random.default_rng(5)
    q = rng.integers(-20000, 20000, (4, 33, 64))
    ref = rope(q * 1e-3, base=10000.0) / 1e-3
    err = {b: np.abs(I16.code_to_int(integer_rope(q, 1e-3, 1e-3, "int16", base=1e4, bits=b)) - ref).max()
           for b in (8, 16)}
    assert err[16] < err[8] / 50


@settings(max_examples=50, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(-127, 127), st.integers(-127, 127)), min_size=1, max_size=6),
       bits=st.sampled_from([8, 16]), s_in=st.floats(1e-3, 1.0), s_out=st.floats(1e-3, 1.0))
def test_rope_bit_exact_vs_scalar(pairs, bits, s_in, s_out):
    seq = len(pairs)
    q = np.array(pairs).reshape(seq, 2)
    cos, sin = rope_tables(seq, 2, 10000.0, bits)
    k = 2 ** (bits - 1) - 1
    want = []
    for t, (x0, x1) in enumerate(pairs):
        c, s = int(cos[t, 0]), int(sin[t, 0])
        want += [sat(mult(x0 * c - x1 * s, s_in / (k * s_out)), "int8"),
                 sat(mult(x0 * s + x1 * c, s_in / (k * s_out)), "int8")]
    got = get_format("int8").code_to_int(integer_rope(q, s_in, s_out, "int8", base=10000.0, bits=bits))
    assert got.reshape(-1).tolist() == want


def test_rope_tables_exact_at_zero():
    cos, sin = rope_tables(3, 8, 10000.0, 8)
    assert cos[0].tolist() == [127] * 4 and sin[0].tolist() == [0] * 4


# -- mean pool --------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 255), st.booleans()), min_size=1, max_size=10),
       zp=st.integers(0, 255))
def test_mean_pool_bit_exact_and_half_lsb(rows, zp):
    q = np.array([[[v] for v, _ in rows]])
    mask = np.array([[int(k) for _, k in rows]])
    n = max(sum(k for _, k in rows), 1)
    s = sum(v - zp for v, k in rows if k)
    want = (2 * s + n) // (2 * n)
    got = int(integer_mean_pool(q, mask, zp, "int16")[0, 0].astype(np.int16))
    assert got == want
    if any(k for _, k in rows):
        assert abs(got - s / n) <= 0.5


def test_fixed_point_step_checks_its_parameters():
    with pytest.raises(ConfigError, match="softmax_bits"):
        load_recipe({"recipe": [{"rtn": {}}, {"fixed_point": {"softmax_bits": 12}}]})
