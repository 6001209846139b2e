"""requantize on scalars and broadcast shapes; the caller's arrays are never modified."""

from __future__ import annotations

import numpy as np

from hwsim import requantize


def test_scalar_accumulator_with_per_channel_zero_points():
    out = requantize(1000, 1 << 30, -40, np.array([1, 2, 3]))  # 1000 * 2**-10 = 0.977 -> 1
    assert out.tolist() == [2, 3, 4]


def test_scalar_in_scalar_out():
    out = requantize(7, 1 << 30, -30, 2)  # 7 * 2**0 + 2
    assert np.ndim(out) == 0 and int(out) == 9


def test_inputs_are_not_modified():
    acc = np.array([100, 200, 300], dtype=np.int64)
    multiplier = np.array([1 << 30], dtype=np.int64)
    zero_point = np.array([5], dtype=np.int64)
    for rounding in ("gemmlowp", "single", "rne", "floor"):
        out = requantize(acc, multiplier, -31, zero_point, rounding=rounding)
        assert out.tolist() == [55, 105, 127]
        assert acc.tolist() == [100, 200, 300] and zero_point.tolist() == [5] and multiplier.tolist() == [1 << 30]
