"""n-dimensional Pareto filter: sort-based, vectorised over the current front.

A point is on the front when no other point is at least as good in every objective and strictly better
in one. Objectives are minimised; pass ``maximize`` flags for the others (accuracy). A point with a NaN
or infinite coordinate is never on the front (it is not a measured trade-off).

Algorithm (Kung-Luccio-Preparata style, sort first): sort the points lexicographically; a point can
only be dominated by a point before it in that order. For two objectives one running minimum over the
sorted order decides every point (O(n log n)). For more objectives the points are visited in sorted
order in blocks; each block is tested against the front found so far with one numpy comparison and
against itself, so the cost is O(n log n + n * f) for a front of ``f`` points (fronts of real sweeps
hold a small fraction of the points). Exact duplicates do not dominate each other: both stay.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_mask", "pareto_mask_brute"]

_BLOCK = 1024


def _as_minimised(values, maximize) -> np.ndarray:
    x = np.array(values, dtype=np.float64, copy=True)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"objectives must be a 2-D array (points x objectives), not {x.ndim}-D")
    flags = np.zeros(x.shape[1], dtype=bool) if maximize is None else np.asarray(maximize, dtype=bool)
    if flags.shape != (x.shape[1],):
        raise ValueError(f"maximize must have one flag per objective ({x.shape[1]}), not {flags.size}")
    x[:, flags] *= -1.0
    return x


def _front_2d(s: np.ndarray) -> np.ndarray:
    """Mask over rows of ``s`` sorted by (col 0, col 1): not dominated."""
    c0, c1 = s[:, 0], s[:, 1]
    starts = np.flatnonzero(np.r_[True, c0[1:] != c0[:-1]])  # first row of each equal-c0 group
    group_min = np.minimum.reduceat(c1, starts)
    before = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]  # best c1 among strictly smaller c0
    sizes = np.diff(np.r_[starts, c0.size])
    return (c1 == np.repeat(group_min, sizes)) & (c1 < np.repeat(before, sizes))


def _dominated_by(cand: np.ndarray, front: np.ndarray) -> np.ndarray:
    """For each row of ``cand``: is some row of ``front`` <= in all and < in one."""
    if not front.size:
        return np.zeros(len(cand), dtype=bool)
    le = (front[None, :, :] <= cand[:, None, :]).all(axis=2)
    lt = (front[None, :, :] < cand[:, None, :]).any(axis=2)
    return (le & lt).any(axis=1)


def _front_nd(s: np.ndarray) -> np.ndarray:
    keep = np.zeros(len(s), dtype=bool)
    front = s[:0]
    for start in range(0, len(s), _BLOCK):
        block = s[start:start + _BLOCK]
        alive = ~_dominated_by(block, front)
        idx = np.flatnonzero(alive)
        sub = block[idx]
        # within the block, only earlier rows (in sorted order) can dominate later ones, but a full
        # pairwise test is as cheap for one block and needs no ordering argument
        alive_sub = ~_dominated_by(sub, sub)
        good = idx[alive_sub]
        keep[start + good] = True
        front = np.concatenate([front, block[good]])
    return keep


def pareto_mask(objectives, maximize=None) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``objectives`` (points x objectives).

    Parameters
    ----------
    objectives : array-like, shape (n,) or (n, d)
        One row per point, one column per objective (any units; compared per column).
    maximize : sequence of bool, optional
        Per objective: True to maximise (e.g. accuracy), False (default) to minimise.
    """
    x = _as_minimised(objectives, maximize)
    mask = np.zeros(len(x), dtype=bool)
    finite = np.flatnonzero(np.isfinite(x).all(axis=1))
    if not finite.size:
        return mask
    sub = x[finite]
    order = np.lexsort(sub.T[::-1])  # by column 0, then 1, ...
    s = sub[order]
    if s.shape[1] == 1:
        keep = s[:, 0] == s[0, 0]
    elif s.shape[1] == 2:
        keep = _front_2d(s)
    else:
        keep = _front_nd(s)
    mask[finite[order]] = keep
    return mask


def pareto_mask_brute(objectives, maximize=None) -> np.ndarray:
    """The definition, O(n^2): the reference :func:`pareto_mask` is tested against."""
    x = _as_minimised(objectives, maximize)
    finite = np.isfinite(x).all(axis=1)
    out = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(finite):
        others = x[finite]
        dominated = ((others <= x[i]).all(axis=1) & (others < x[i]).any(axis=1)).any()
        out[i] = not dominated
    return out
