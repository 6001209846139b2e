"""Hadamard matrices of orders ``2^k``, ``12·2^k`` and ``144·2^k`` and the transform ``y = x H / sqrt(n)``.

Rotation recipes (QuaRot, Ashkboos et al. 2024) need a Hadamard transform over the hidden size of the
model. SmolLM2's 576 = 12·12·4 and MiniLM/SmolLM2's FFN widths 1536 = 12·128 and 384 = 12·32 are not powers
of two, so a Sylvester-only fast Walsh–Hadamard transform cannot do them. A Kronecker product of Hadamard
matrices is a Hadamard matrix, so ``H_n = H12 ⊗ ... ⊗ H12 ⊗ H_{2^k}`` with the order-12 factor built by
**Paley's construction I** (q = 11 ≡ 3 mod 4): with the Jacobsthal matrix ``Q[i, j] = χ(j − i)`` (χ the
quadratic character of GF(11)), ``S = [[0, 1ᵀ], [−1, Q]]`` is skew and ``H12 = I + S``.

The transform is applied factor by factor (one dense ±1 product per Kronecker factor: the fast transform
of the vector unit); on integers it is exact (int64), the ``1/sqrt(n)`` normalisation being a scale.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def paley_h12() -> np.ndarray:
    """The order-12 Hadamard matrix of Paley's construction I over GF(11) (int64 ±1)."""
    q = 11
    residues = {(i * i) % q for i in range(1, q)}
    chi = np.array([0] + [1 if d in residues else -1 for d in range(1, q)], np.int64)
    jac = chi[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]
    s = np.zeros((q + 1, q + 1), np.int64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = jac
    return np.eye(q + 1, dtype=np.int64) + s


def sylvester(n: int) -> np.ndarray:
    """Sylvester's Hadamard matrix of order ``n`` (a power of two), int64 ±1."""
    h = np.ones((1, 1), np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


@lru_cache(maxsize=32)
def factors(n: int) -> tuple[np.ndarray, ...]:
    """Kronecker factors (int64 ±1, read-only) of the order-``n`` Hadamard matrix, outermost first.

    Raises ``ValueError`` unless ``n = 12^a · 2^k`` with ``a <= 2``.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"Hadamard order must be a positive integer, not {n!r}")
    m, twelves = int(n), 0
    while m % 12 == 0 and twelves < 2:
        m //= 12
        twelves += 1
    if m & (m - 1):
        raise ValueError(f"no Hadamard construction for order {n}: expected 2^k, 12·2^k or 144·2^k")
    out = [paley_h12() for _ in range(twelves)] + ([sylvester(m)] if m > 1 else [])
    for f in out:
        f.flags.writeable = False
    return tuple(out)


def matrix(n: int) -> np.ndarray:
    """The order-``n`` Hadamard matrix (int64 ±1): the Kronecker product of :func:`factors`."""
    h = np.ones((1, 1), np.int64)
    for f in factors(n):
        h = np.kron(h, f)
    return h


def transform_unscaled(x: np.ndarray) -> np.ndarray:
    """``x @ H_n`` over the last axis without normalisation (exact for integer input: int64 in, int64 out)."""
    x = np.asarray(x)
    n = x.shape[-1]
    fs = factors(n)
    lead = x.shape[:-1]
    y = x.reshape(*lead, *[f.shape[0] for f in fs])
    for i, f in enumerate(fs):
        axis = len(lead) + i
        y = np.moveaxis(np.tensordot(y, f.astype(y.dtype) if y.dtype.kind == "f" else f, axes=([axis], [0])),
                        -1, axis)
    return y.reshape(*lead, n)


def transform(x: np.ndarray) -> np.ndarray:
    """Normalised Hadamard transform ``x @ H_n / sqrt(n)`` over the last axis, float64 (orthogonal)."""
    x = np.asarray(x, np.float64)
    return transform_unscaled(x) / np.sqrt(x.shape[-1])


def adds_per_element(n: int) -> int:
    """Additions per output element of the factorised transform: 11 per Paley H12 factor (dense), and
    ``log2(m)`` for the Sylvester factor of order ``m`` (butterflies)."""
    return int(sum(11 if f.shape[0] == 12 else int(f.shape[0]).bit_length() - 1 for f in factors(n)))
