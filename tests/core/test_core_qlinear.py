"""The core quantized linear layer against independent references written with Python-int loops."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.formats import get_format
from hwsim.gemm import gemm_fixed, gemm_fixed_grouped
from hwsim.qlinear import quantized_linear, quantized_matmul
from hwsim.qspec import QTensor, QuantSpec, quantize_activation, quantize_to_spec, weight_spec, weight_values
from hwsim.requant import quantize_multiplier, requantize

SEEDS = st.integers(0, 2**32 - 1)


def _codes(rng, fmt, shape):
    return rng.integers(0, get_format(fmt).num_codes, size=shape).astype(np.uint8)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, g=st.sampled_from([1, 4, 8, 32]), groups=st.integers(1, 4),
       pair=st.sampled_from([("int8", "uint4"), ("int8", "int8"), ("float8_e4m3fn", "float4_e2m1fn"),
                             ("int8", "dint4")]))
def test_grouped_accumulators_equal_per_group_gemm(seed, g, groups, pair):
    rng = np.random.default_rng(seed)
    a_fmt, b_fmt = pair
    a = _codes(rng, a_fmt, (3, g * groups))
    b = _codes(rng, b_fmt, (g * groups, 5))
    zb = rng.integers(0, 16, size=(groups, 5)) if b_fmt == "uint4" else 0
    acc, lsb = gemm_fixed_grouped(a, a_fmt, b, b_fmt, g, b_zero_point=zb)
    for i in range(groups):
        sl = slice(i * g, (i + 1) * g)
        ref, lsb_ref = gemm_fixed(a[:, sl], a_fmt, b[sl], b_fmt,
                                  b_zero_point=zb[i:i + 1] if np.ndim(zb) else 0)
        assert lsb == lsb_ref and np.array_equal(acc[i], np.asarray(ref, np.int64))


def test_integer_path_is_gemm_bias_requant():
    """W8A8 per channel: exact accumulator + rint(b / s_acc) + gemmlowp requant, by hand."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 48))
    w = rng.normal(size=(48, 10)) * 0.1
    b = rng.normal(size=10)
    xs = QuantSpec("int8", scale=np.asarray(np.abs(x).max() / 127))
    xq = quantize_activation(x, xs)
    ws = weight_spec(w, "int8", "channel")
    out = QuantSpec("int8", scale=np.asarray(0.05))
    y = quantized_linear(xq, ws, b, out)
    a_int = get_format("int8").code_to_int(xq.codes)
    w_int = get_format("int8").code_to_int(ws.codes)
    acc = np.array([[sum(int(a_int[m, k]) * int(w_int[k, n]) for k in range(48)) for n in range(10)]
                    for m in range(7)], dtype=np.int64)
    s_acc = float(xs.scale) * ws.scale
    acc = acc + np.rint(b / s_acc).astype(np.int64)
    mult, shift = quantize_multiplier(s_acc / 0.05)
    expect = requantize(acc, mult, shift, 0, out_format="int8", rounding="gemmlowp")
    assert np.array_equal(get_format("int8").code_to_int(y.codes), expect)


def test_group_offset_path_matches_gguf_rule():
    """Q4_1-style weights: y = s_a * sum_g (d_g acc_g + m_g sum(a_g)) + b, groups summed in order."""
    rng = np.random.default_rng(2)
    k, n, g = 64, 6, 32
    codes = rng.integers(0, 16, size=(k, n)).astype(np.uint8)
    d = rng.uniform(0.01, 0.1, size=(k // g, n))
    m = rng.uniform(-0.5, 0.0, size=(k // g, n))
    ws = QuantSpec("uint4", "group", 0, g, scale=d, offset=m, codes=codes)
    x = rng.normal(size=(4, k))
    xq = quantize_activation(x, QuantSpec("int8", "token"))
    y = quantized_linear(xq, ws)
    a = get_format("int8").code_to_int(xq.codes).astype(np.int64)
    ref = np.zeros((4, n))
    for i in range(k // g):
        sl = slice(i * g, (i + 1) * g)
        acc = a[:, sl] @ codes[sl].astype(np.int64)
        ref += acc * d[i]
        ref += a[:, sl].sum(axis=1, keepdims=True) * m[i]
    ref *= xq.scale
    assert np.array_equal(y, ref)
    np.testing.assert_allclose(y, (a * xq.scale) @ weight_values(ws), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "mxfp4", "float4_e2m1fn"])
def test_float_formats_use_exact_accumulators(fmt):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(64, 8))
    ws = weight_spec(w, fmt, "group" if fmt == "float4_e2m1fn" else "channel", 32 if fmt == "float4_e2m1fn" else None)
    x = rng.normal(size=(5, 64))
    xq = quantize_activation(x, QuantSpec("float8_e4m3fn", scale=np.asarray(np.abs(x).max() / 448)))
    y = quantized_linear(xq, ws)
    # the exact real product of the decoded operands, rounded once per group: within float64 rounding
    ref = xq.real() @ weight_values(ws)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_quantized_matmul_batches_like_linear():
    rng = np.random.default_rng(4)
    a = QTensor(_codes(rng, "int8", (3, 5, 16)), "int8", np.asarray(0.02))
    b = QTensor(_codes(rng, "int8", (3, 16, 4)), "int8", np.asarray(0.03))
    out = QuantSpec("int8", scale=np.asarray(0.4))
    y = quantized_matmul(a, b, out, product_scale=0.25)
    for i in range(3):
        yi = quantized_linear(QTensor(a.codes[i], "int8", a.scale), QuantSpec("int8", scale=b.scale, codes=b.codes[i]),
                              None, out, product_scale=0.25)
        assert np.array_equal(y.codes[i], yi.codes)


def test_scale_and_round_rule():
    assert list(quantize_to_spec(np.array([0.5, 1.5, 2.5, -0.5, 1000.0]), "int8", 1.0)
                .view(np.int8)) == [0, 2, 2, 0, 127]  # half to even, saturating
    assert list(quantize_to_spec(np.array([-1.0, 0.0]), "uint8", 0.5, 10)) == [8, 10]


def test_bad_shapes_are_named():
    ws = weight_spec(np.ones((4, 2)), "int8")
    with pytest.raises(ValueError, match="quantized_linear needs x"):
        quantized_linear(QTensor(np.zeros((2, 3), np.uint8), "int8", np.asarray(1.0)), ws)


def _literal_quantize(x, fmt, scale, zero_point=0):
    """The scale-and-round rule written out once more, element by element in Python."""
    spec = get_format(fmt)
    v = np.asarray(x, np.float64) / np.asarray(scale, np.float64)
    zp = np.broadcast_to(np.asarray(zero_point, np.int64), v.shape)
    ints = [min(max(int(np.rint(a)) + int(z), spec.lo), spec.hi) for a, z in zip(v.flat, zp.flat, strict=True)]
    return spec.int_to_code(np.array(ints, np.int64).reshape(v.shape))


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, fmt=st.sampled_from(["int2", "int4", "uint4", "int8", "uint8", "int12", "int16", "uint16",
                                        "int32"]), per_row=st.booleans())
def test_quantize_to_spec_equals_the_literal_rule(seed, fmt, per_row):
    rng = np.random.default_rng(seed)
    spec = get_format(fmt)
    x = np.concatenate([rng.normal(scale=spec.hi / 2, size=(4, 6)), rng.integers(-9, 9, size=(4, 3)) + 0.5,
                        np.full((4, 1), 3.0 * spec.hi)], axis=1)  # ties to even and saturation
    scale = rng.uniform(0.5, 2.0, size=(4, 1)) if per_row else 0.75
    zp = rng.integers(spec.lo, spec.hi + 1, size=(4, 1)) if per_row and fmt.startswith("u") else 0
    got = quantize_to_spec(x, fmt, scale, zp)
    assert got.dtype == spec.code_dtype
    assert np.array_equal(got, _literal_quantize(x, fmt, scale, zp))


def test_quantizing_nan_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"cannot quantize NaN to int8"):
        quantize_to_spec(np.array([1.0, np.nan]), "int8", 0.1)


@settings(max_examples=40, deadline=None)
@given(seed=SEEDS, pair=st.sampled_from([("int8", "int8"), ("uint8", "int8"), ("int16", "int16"), ("int4", "uint4")]),
       k=st.sampled_from([1, 7, 64, 1100, 4096]), zero_points=st.booleans())
def test_quantized_matmul_accumulators_are_exact_in_every_float_regime(seed, pair, k, zero_points):
    """float32 (int8 x int8, K <= 1024), float64 and int64 (int16 x int16 at large K) give the exact sums."""
    rng = np.random.default_rng(seed)
    fa, fb = pair
    zp_a = int(rng.integers(0, 16)) if zero_points and fa.startswith("u") else 0
    zp_b = int(rng.integers(0, 16)) if zero_points and fb.startswith("u") else 0
    ca = rng.integers(0, get_format(fa).num_codes, size=(2, 3, k)).astype(get_format(fa).code_dtype)
    cb = rng.integers(0, get_format(fb).num_codes, size=(2, k, 5)).astype(get_format(fb).code_dtype)
    a = QTensor(ca, fa, np.asarray(0.02), zp_a)
    b = QTensor(cb, fb, np.asarray(0.03), zp_b)
    y = quantized_matmul(a, b, None, product_scale=0.5)
    ia = get_format(fa).code_to_int(ca) - zp_a
    ib = get_format(fb).code_to_int(cb) - zp_b
    exact = np.array([[[sum(int(p) * int(q) for p, q in zip(ia[h, i], ib[h, :, j], strict=True))
                        for j in range(5)] for i in range(3)] for h in range(2)], dtype=object)
    assert np.array_equal(y, exact.astype(np.float64) * (np.asarray(0.02) * 0.03 * 1.0 * 0.5))


@settings(max_examples=80, deadline=None)
@given(seed=SEEDS, fmt=st.sampled_from(["int8", "int4", "int16"]), exponent=st.integers(-60, 60))
def test_dynamic_per_token_rule_needs_no_clip(seed, fmt, exponent):
    """quantize_activation skips the clip for the dynamic rule: it must equal the clipped literal rule."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, 33)) * 2.0**exponent
    x[1] = x[1, 0]  # a row of one repeated value: every element is its row's amax
    x[2] = -np.abs(x[2])
    x[3] = 0.0
    x[4, :3] = [1e-300, -1e-300, 0.0]
    spec = QuantSpec(fmt, granularity="token")
    q = quantize_activation(x, spec)
    assert np.array_equal(q.codes, _literal_quantize(x, fmt, q.scale))
