"""n-dimensional Pareto filter against the O(n^2) definition on random sets."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.pareto import pareto_mask, pareto_mask_brute


@pytest.mark.parametrize("dims", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_on_random_sets(dims, seed):
    rng = np.random.default_rng(seed * 10 + dims)
    n = int(rng.integers(1, 1500))
    # few distinct values per column: many ties and exact duplicates
    x = rng.integers(0, 12, size=(n, dims)).astype(float)
    if seed % 2:
        x = rng.random((n, dims))
    maximize = rng.random(dims) < 0.5
    got = pareto_mask(x, maximize)
    np.testing.assert_array_equal(got, pareto_mask_brute(x, maximize))


def test_non_finite_points_never_on_front():
    x = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 0.0], [0.0, np.inf, 0.0], [2.0, 1.0, 3.0]])
    assert pareto_mask(x).tolist() == [True, False, False, True]


def test_maximised_objective_flips_the_sense():
    acc_lat = [[0.9, 10.0], [0.95, 10.0], [0.99, 20.0]]
    assert pareto_mask(acc_lat, [True, False]).tolist() == [False, True, True]


def test_block_boundaries_dominated_across_blocks():
    # one point that dominates everything else sits last in sort order of column 0 ties
    rng = np.random.default_rng(1)
    x = rng.random((5000, 3)) + 1.0
    x[4321] = [1.0, 1.0, 1.0]
    assert np.flatnonzero(pareto_mask(x)).tolist() == [4321]
