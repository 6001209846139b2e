"""The group epilogue of a quantized linear layer with group / MX-block weight scales.

The rule (written once, here): with exact per-group accumulators ``acc_g = Σ_{k∈g} F_x,k (F_w,k − zp_w)``
(fixed-point integers, LSB ``2^lsb``), the layer's real result before the activation scale is ::

    y = Σ_g  acc_g · 2^lsb · s_w[g]  +  o_w[g] · Σ_{k∈g} F_x,k · 2^lsb_x        (offset weights only, GGUF Q4_1)

summed over the groups ``g = 0, 1, …`` in ascending order in float64, every product and every addition
rounded to nearest even (:func:`sequential_group_sum`).

**An exact fast evaluation of the same rule** (:func:`group_sum`). Every term above is an integer multiple
of a quantum ``q_n = 2^e`` per output column ``n`` (``e`` = the smallest LSB exponent of the column's
scales and offsets plus the operand LSBs), and the sum of the magnitudes of all terms is at most ::

    B_n = Bx Bw G_s 2^(lsb) Σ_g |s_w[g, n]|  +  G_s Bx 2^(lsb_x) Σ_g |o_w[g, n]|

(``Bx``, ``Bw`` the largest ``|F − zp|`` of the formats, ``G_s`` the group size). When ``B_n < 2^52 q_n``
every partial sum in *any* order is an integer multiple of ``q_n`` below ``2^53 q_n`` — exactly
representable in float64 — so no operation of the sequential rule rounds: it returns the exact sum.

A float64 GEMM of the exact activation values ``F_x 2^lsb_x`` and the weight operand
``W = (F_w − zp_w) 2^lsb_w s_w[g] + o_w[g]`` computes the same exact sum in whatever order BLAS uses, so
it returns the same bits: each product ``F_x 2^lsb_x W`` is the sum of two of the rule's terms, and the
condition also makes ``W`` itself exact (``B_n ≥ 2^lsb_x (|(F_w − zp_w) 2^lsb_w s_w| + |o_w|)`` while
``q_n 2^-lsb_x`` divides both addends). The condition is checked once per weight spec and activation
format (cached on the spec); a spec that fails it (e.g. scales with full 53-bit mantissas from a float64
RTN) takes the sequential loop. Stored GGUF ``Q4_1``/``Q8_0`` (fp16 ``d``, ``m``) and MX (E8M0) scales meet
it with ample margin (SmolLM2-135M: at most 2^34.3 quanta against 2^52).

Pure numpy.
"""

from __future__ import annotations

import numpy as np

from hwsim.formats import get_format
from hwsim.gemm import gemm_fixed_grouped, operand_bound, value_operand
from hwsim.qspec import QTensor, QuantSpec

#: Largest block (elements) of group accumulators the sequential loop holds at once (bounds memory for
#: wide layers such as an LLM head).
GROUP_BLOCK_ELEMENTS = 1 << 22
#: The exactness margin of the fast evaluation: partial sums below ``2^52`` quanta (float64 holds 2^53).
_EXACT_QUANTA = 2.0**52


def group_sum(x: QTensor, w: QuantSpec) -> np.ndarray:
    """The group epilogue sum ``y [M, N]`` (float64) of the module docstring's rule, bit for bit.

    Takes the exact dense evaluation when its condition holds for ``w`` and ``x``'s format, else the
    sequential loop.
    """
    fmt = get_format(x.fmt)
    special = fmt.has_special_codes and fmt.is_special(np.asarray(x.codes)).any()
    dense = None if special else _dense_weights(w, x)
    if dense is None:
        return sequential_group_sum(x, w)
    return _dense_sum(x, dense)


def sequential_group_sum(x: QTensor, w: QuantSpec) -> np.ndarray:
    """The rule evaluated literally: groups in ascending order, one float64 rounding per operation.

    Computed in column blocks small enough that the block's group accumulators stay in cache; the exact
    values ``acc_g 2^lsb`` come straight from the batched exact GEMM (no integer conversion pass).
    """
    g = w.group_size
    n_groups = w.codes.shape[0] // g
    m, n = x.codes.shape[0], w.codes.shape[1]
    zpb = None if w.zero_point is None else np.asarray(w.zero_point, np.int64)
    scale = np.asarray(w.scale, np.float64)
    offset = None if w.offset is None else np.asarray(w.offset, np.float64)
    x_sums = _group_sums(x, n_groups, g) if offset is not None else None
    a_zp = _activation_zero_point(x)
    y = np.empty((m, n))
    width = max(1, min(n, GROUP_BLOCK_ELEMENTS // max(m * n_groups, 1)))
    for c0 in range(0, n, width):
        cols = slice(c0, min(c0 + width, n))
        zp = 0 if zpb is None else (zpb[:, cols] if zpb.ndim == 2 else zpb)
        values, _ = gemm_fixed_grouped(x.codes, x.fmt, w.codes[:, cols], w.element_format, g, a_zero_point=a_zp,
                                       b_zero_point=zp, as_values=True)
        block = np.zeros((m, cols.stop - cols.start))
        term = np.empty_like(block)
        for gi in range(n_groups):  # in place: the same roundings as block += values[gi] * scale[gi]
            np.multiply(values[gi], scale[gi, cols], out=term)
            block += term
            if offset is not None:
                np.multiply(x_sums[:, gi:gi + 1], offset[gi, cols], out=term)
                block += term
        y[:, cols] = block
    return y


def _activation_zero_point(x: QTensor):
    return 0 if x.zero_point is None else x.zero_point


def _group_sums(x: QTensor, n_groups: int, g: int) -> np.ndarray:
    """``Σ_{k∈g} F_x,k 2^lsb_x`` per row and group, ``[M, G]`` float64 (exact integers times a power of 2)."""
    fx, lsb_x = x.fixed()
    return np.ldexp(fx.reshape(fx.shape[0], n_groups, g).sum(axis=2).astype(np.float64), lsb_x)


def lsb_exponents(values: np.ndarray) -> np.ndarray:
    """Exponent ``e`` of the lowest set bit of each finite float64 (``v = odd · 2^e``); zeros give +inf."""
    frac, exp = np.frexp(np.asarray(values, np.float64))
    mant = np.ldexp(frac, 53).astype(np.int64)  # exact: |frac| < 1
    low = np.abs(mant & -mant).astype(np.float64)
    out = np.full(mant.shape, np.inf)
    nonzero = mant != 0
    out[nonzero] = exp[nonzero] - 53 + np.frexp(low[nonzero])[1] - 1
    return out


def _bound(fmt_name: str, zero_point) -> float:
    """Largest ``|F − zp|`` of a format's fixed-point values over the given zero point(s)."""
    return float(operand_bound(get_format(fmt_name), np.asarray(0 if zero_point is None else zero_point, np.int64)))


def _dense_weights(w: QuantSpec, x: QTensor):
    """Cached ``W_dense [K, N]`` when the exactness condition holds, else None.

    ``W_dense = (F_w − zp_w) 2^lsb_w s_w[g] (+ o_w[g])`` in float64 (exact under the condition): 8 bytes
    per weight, held with the spec for the graph's lifetime — the price of one BLAS GEMM per layer instead
    of a per-group loop.
    """
    zp = x.zero_point
    # a scalar activation zero point keys the cache directly (no bound computed per call)
    key = ("dense_group_weights", x.fmt, ("zp", int(zp)) if np.ndim(zp) == 0 else ("bound", _bound(x.fmt, zp)))
    if key not in w.cache:
        w.cache[key] = _build_dense_weights(w, get_format(x.fmt).lsb_exponent, _bound(x.fmt, zp))
    return w.cache[key]


def _build_dense_weights(w: QuantSpec, lsb_x: int, bx: float):
    fmt = get_format(w.element_format)
    g = w.group_size
    scale = np.asarray(w.scale, np.float64)
    offset = None if w.offset is None else np.asarray(w.offset, np.float64)
    finite = np.isfinite(scale).all() and (offset is None or np.isfinite(offset).all())
    if not finite or fmt.is_special(np.asarray(w.codes)).any():
        return None  # NaN/Inf: the sequential loop's IEEE behaviour is the rule
    bw = _bound(w.element_format, w.zero_point)
    lsb = lsb_x + fmt.lsb_exponent
    quantum = (lsb_exponents(scale) + lsb).min(axis=0)
    bound = bx * bw * g * 2.0**lsb * np.abs(scale).sum(axis=0)
    if offset is not None:
        quantum = np.minimum(quantum, (lsb_exponents(offset) + lsb_x).min(axis=0))
        bound = bound + g * bx * 2.0**lsb_x * np.abs(offset).sum(axis=0)
    finite = np.isfinite(quantum)
    if not np.all(bound[finite] < np.ldexp(_EXACT_QUANTA, quantum[finite].astype(np.int64))):
        return None
    fw = fmt.to_fixed(np.asarray(w.codes))
    if w.zero_point is not None:
        zp = np.asarray(w.zero_point, np.int64)
        fw = fw - (np.repeat(zp, g, axis=0) if zp.ndim == 2 and zp.shape[0] * g == fw.shape[0] else zp)
    dense = np.ldexp(fw.astype(np.float64), fmt.lsb_exponent) * np.repeat(scale, g, axis=0)
    return dense if offset is None else dense + np.repeat(offset, g, axis=0)  # exact: module docstring


def _dense_sum(x: QTensor, dense: np.ndarray) -> np.ndarray:
    """``x_values @ W_dense``: one float64 GEMM (exact: module docstring)."""
    xv = value_operand(x.codes, get_format(x.fmt), _activation_zero_point(x), "activation codes", np.float64)
    y = xv @ dense  # one BLAS call: the dense weights are held whole anyway
    y += 0.0  # -0.0 -> +0.0, as the sequential loop (which starts from +0.0) returns
    return y
