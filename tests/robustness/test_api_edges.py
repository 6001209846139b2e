"""API edge cases: zero points and shifts range-checked, gemm_ex's guard on the real register bound."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim import requantize
from hwsim.gemm import AccumulatorSpec, gemm_ex
from hwsim.requant import RequantSpec


@pytest.mark.parametrize("zp", [2**63, 2**70, -(2**63) - 1, np.uint64(2**63)], ids=["2^63", "2^70", "-2^63-1", "u64"])
def test_requantize_zero_point_beyond_int64_is_refused_not_wrapped(zp):
    with pytest.raises(ValueError, match="zero_point must fit int64"):
        requantize(100, 1 << 30, -1, zero_point=zp)


def test_requantize_zero_point_outside_the_output_range():
    with pytest.raises(ValueError, match=r"zero_point must lie in the int8 range -128..127, not 200"):
        requantize(100, 1 << 30, -4, zero_point=200)
    assert requantize(0, 1 << 30, -4, zero_point=200, out_format="uint8") == 200


def test_requant_spec_checks_shift_and_accumulator_width():
    spec = RequantSpec(acc_bits=16, multiplier_bits=16)
    lo, _ = spec.shift_range
    with pytest.raises(ValueError, match=f"shift must lie in {lo}..0 for this requant unit, not 3"):
        spec.apply(10, 1 << 14, 3)
    with pytest.raises(ValueError, match="acc must fit the unit's 16-bit accumulator, not 40000"):
        spec.apply(40000, 1 << 14, -2)


def _register_model(a, b, bits, overflow):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = np.zeros((a.shape[0], b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = 0
            for k in range(a.shape[1]):
                acc += int(a[i, k]) * int(b[k, j])
                acc = ((acc - lo) % (1 << bits)) + lo if overflow == "wrap" else min(max(acc, lo), hi)
            out[i, j] = acc
    return out


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_gemm_ex_int32_operands_with_a_32_bit_accumulator(overflow):
    rng = np.random.default_rng(7)
    a = rng.integers(-(2**31), 2**31, size=(3, 2), dtype=np.int64)
    b = rng.integers(-(2**31), 2**31, size=(2, 4), dtype=np.int64)
    codes_a, codes_b = a & 0xFFFFFFFF, b & 0xFFFFFFFF  # int32 codes are two's-complement bit patterns
    got = gemm_ex(codes_a, "int32", codes_b, "int32", accumulator=AccumulatorSpec(bits=32, overflow=overflow))
    assert np.array_equal(got.values.astype(object), _register_model(a, b, 32, overflow))


def test_gemm_ex_guard_names_the_register_bound():
    a = np.full((1, 2), 2**31, dtype=np.int64)  # int32 code of -2^31
    with pytest.raises(ValueError, match="register value plus one product"):
        gemm_ex(a, "int32", a.T.copy(), "int32", accumulator=AccumulatorSpec(bits=63, overflow="wrap"))
