"""The quantile data type (Dettmers & Zettlemoyer, "The case for 4-bit precision: k-bit inference scaling
laws", ICML 2023): a ``2**k``-entry codebook fitted per tensor to the tensor's own weight distribution.

Fitting, for a weight ``W`` quantized with one absmax scale per block (tensor, output channel or group of
``g`` rows along K)::

    u      = W / absmax_block(W)                       (every block normalised into [-1, 1])
    q_i    = Q_u((i + 1/2) / 2**k),   i = 0 .. 2**k - 1   (equal-probability quantiles of the pooled u)
    level_i = q_i / |q_0|  (q_i < 0),   q_i / q_(2**k-1)  (q_i > 0)   (both ends onto ±1)

``Q_u`` is the exact empirical quantile function of ``u`` (``numpy.quantile``, linear interpolation); the
paper estimates the same equidistant quantiles, offset ``1/(2n)`` from 0 and 1, with the approximate
SRAM-quantiles algorithm.  bitsandbytes' ``create_quantile_map`` normalises the code by its largest
magnitude only; here each sign's side is stretched onto its own end so that both +1 and -1 are levels: a
block's absmax element maps onto a level exactly whatever its sign, and ``max(format) = 1`` matches the
absmax scale of :func:`hwsim.quantize.quantize`.  The levels are the bin centres of ``2**k``
equal-probability bins; with round-to-nearest the inner codes take about equal shares and the two end
codes about half a share each.  There is no forced exact zero.  Levels are stored as
float32 (as NF4 is), which keeps them dyadic: the integer executor multiplies their exact fixed-point view.
NF4 is the special case where ``u`` is assumed standard normal (:func:`hwsim.formats.nf4_codebook`).

Names.  ``quantileK`` (K = 2..8) is the *data type*: a recipe asks for ``weights: quantile4`` and
:func:`hwsim.qspec.weight_spec` fits a codebook to each weight.  The fitted codebook is the spec's format,
named after its levels so the spec carries it and any process can rebuild it::

    quantile4:<16 x 8 hex digits, the float32 bit patterns of the levels, code 0 first>

:func:`resolve` turns both kinds of names into format objects (hooked into :func:`hwsim.formats.get_format`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hwsim.formats import CodebookFormat, register_resolver

__all__ = ["QuantileType", "codebook_format", "quantile_codebook", "resolve"]

MIN_BITS, MAX_BITS = 2, 8
_TYPE_NAME = re.compile(r"quantile(\d+)")
_CODEBOOK_NAME = re.compile(r"quantile(\d+):([0-9a-f]+)")


def quantile_codebook(u, bits: int) -> tuple[float, ...]:
    """Levels (ascending, float32 values, max magnitude 1) of the quantile type fitted to normalised data ``u``.

    Parameters
    ----------
    u : array_like of float
        Block-normalised weights (values in [-1, 1]; any finite values are accepted; ``-1`` and ``+1``
        are levels whenever the data has values of that sign beyond the extreme quantiles).
    bits : int
        Code width k: ``2**k`` levels at the quantiles ``(i + 1/2) / 2**k`` of ``u``.
    """
    u = np.asarray(u, np.float64).ravel()
    if u.size == 0 or not np.all(np.isfinite(u)):
        raise ValueError("data for a quantile codebook must be a non-empty finite array")
    n = 1 << bits
    q = np.quantile(u, (np.arange(n) + 0.5) / n)
    levels = q.copy()
    if q[0] < 0:
        levels[q < 0] = q[q < 0] / -q[0]
    if q[-1] > 0:
        levels[q > 0] = q[q > 0] / q[-1]
    return tuple(float(v) for v in np.sort(levels.astype(np.float32)))


def codebook_format(levels) -> CodebookFormat:
    """The codebook format of fitted ``levels`` (float32-rounded), named after them (module docstring)."""
    table = np.asarray(levels, np.float32)
    bits = int(np.log2(table.size)) if table.size else 0
    if table.size != 1 << bits or not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(f"a quantile codebook needs 2**k entries with k in {MIN_BITS}..{MAX_BITS}, "
                         f"not {table.size!r}")
    name = f"quantile{bits}:" + table.astype(">f4").tobytes().hex()
    return CodebookFormat(name=name, bits=bits, table=tuple(float(v) for v in table))


@dataclass(frozen=True)
class QuantileType:
    """The k-bit quantile data type before fitting (``quantile4``); :meth:`fit` gives the tensor's codebook."""

    name: str
    bits: int
    kind = "quantile"

    def fit(self, w, granularity: str = "channel", group_size: int | None = None) -> CodebookFormat:
        """Codebook of weight ``w[K, N]`` normalised per block (``tensor``, ``channel`` = per column, or
        ``group`` of ``group_size`` rows along K) by its absmax."""
        return codebook_format(quantile_codebook(block_normalized(w, granularity, group_size), self.bits))


def block_normalized(w, granularity: str, group_size: int | None) -> np.ndarray:
    """``w[K, N]`` divided by the absmax of its block (all-zero blocks stay zero)."""
    w = np.asarray(w, np.float64)
    a = np.abs(w)
    if granularity == "tensor":
        amax = np.full((1, 1), a.max())
    elif granularity == "channel":
        amax = a.max(axis=0, keepdims=True)
    elif granularity == "group":
        k, n = w.shape
        if not isinstance(group_size, int) or group_size < 1 or k % group_size:
            raise ValueError(f"group_size must divide K = {k}, not {group_size!r}")
        amax = np.repeat(a.reshape(k // group_size, group_size, n).max(axis=1), group_size, axis=0)
    else:
        raise ValueError(f"quantile granularity must be tensor, channel or group, not {granularity!r}")
    return w / np.where(amax > 0, amax, 1.0)


def resolve(name: str):
    """Format object for ``quantileK`` (a :class:`QuantileType`) or ``quantileK:<hex>`` (its codebook), else None."""
    m = _TYPE_NAME.fullmatch(name)
    if m and MIN_BITS <= int(m.group(1)) <= MAX_BITS:
        return QuantileType(name, int(m.group(1)))
    m = _CODEBOOK_NAME.fullmatch(name)
    if m and MIN_BITS <= int(m.group(1)) <= MAX_BITS and len(m.group(2)) == 8 << int(m.group(1)):
        levels = np.frombuffer(bytes.fromhex(m.group(2)), dtype=">f4").astype(np.float64)
        if np.all(np.isfinite(levels)):
            fmt = codebook_format(levels)
            if fmt.name == name:
                return fmt
    return None


register_resolver(resolve)
