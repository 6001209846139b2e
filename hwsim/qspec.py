"""Quantization specs: how one tensor of a graph is quantized, and the one scale-and-round rule.

A :class:`QuantSpec` is the authoritative description of a tensor's quantization. It lives on the
graph's tensors (:class:`hwsim.graph.TensorInfo`); the integer executor, the performance model and the
RTL scoreboards read it there. Real value of a code::

    real = (value(code) - zero_point) * scale + offset

Granularities (``scale``/``zero_point``/``offset`` shapes for a weight ``W[K, N]`` with ``y = x @ W``,
and for an activation ``x[..., C]``):

============  =====================================================  ================================
granularity   meaning                                                scale shape
============  =====================================================  ================================
``tensor``    one scale                                              ``()``
``channel``   one scale per index of ``axis`` (weights: axis 1, per  ``[N]`` (weights) / ``[C]``
              output column; activations: the last axis)
``group``     one scale per ``group_size`` consecutive elements      ``[K / group_size, N]``
              along ``axis`` (weights: axis 0, along K)
``block``     OCP MX: ``group_size`` = 32 elements along K share a   ``[K / 32, N]`` (powers of two)
              power-of-two E8M0 scale; ``format`` is the MX format
``token``     dynamic: one scale per row computed at run time as     ``None`` on the spec
              ``amax(row) / max(format)`` (llama.cpp-style)
============  =====================================================  ================================

``offset`` (GGUF ``Q4_1``'s ``m``) is a real additive term per group; ``zero_point`` is an integer
(checkpoint ``uint4`` zeros, asymmetric activations). Weights carry their ``codes``.

:func:`quantize_to_spec` is the single scale-and-round rule used by every executor: divide by the
scale, round to nearest even, add the zero point, saturate to the format (float/dINT/codebook formats:
their own round-to-nearest-even saturating encoder). Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

GRANULARITIES = ("tensor", "channel", "group", "block", "token")

#: Smallest scale a calibrated tensor gets (an all-zero tensor would otherwise divide by zero).
MIN_SCALE = 1e-12


@dataclass(frozen=True, eq=False)
class QuantSpec:
    """How a tensor is quantized (see the module docstring for shapes and the value rule).

    Parameters
    ----------
    format : str
        hwsim format name (``"int8"``, ``"uint8"``, ``"int4"``, ``"dint4"``, ``"float8_e4m3fn"``,
        ``"mxfp4"``, ``"int16"``, ...).
    granularity : {"tensor", "channel", "group", "block", "token"}
    axis : int or None
        Channel axis (``channel``) or grouped axis (``group``/``block``).
    group_size : int or None
        Elements per group (``group``/``block``).
    scale, zero_point, offset : ndarray or None
        ``None`` when not yet calibrated (or dynamic, ``token``).
    codes : ndarray or None
        Stored codes (weights).
    """

    format: str
    granularity: str = "tensor"
    axis: int | None = None
    group_size: int | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    offset: np.ndarray | None = None
    codes: np.ndarray | None = None
    #: Derived operands of the codes (fixed-point integers, BLAS views) computed once per spec by
    #: :mod:`hwsim.qlinear`; not an init field, so :meth:`with_` starts a fresh cache.
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"QuantSpec.granularity must be one of {GRANULARITIES}, "
                             f"not {self.granularity!r}")
        if self.granularity in ("group", "block") and not (isinstance(self.group_size, int)
                                                          and self.group_size > 0):
            raise ValueError(f"QuantSpec.group_size must be a positive int for {self.granularity!r} "
                             f"granularity, not {self.group_size!r}")

    @property
    def element_format(self) -> str:
        """Format of one code: the MX element format for ``block`` specs, else ``format``."""
        from hwsim.formats import get_format

        spec = get_format(self.format)
        return spec.element.name if spec.kind == "mx" else self.format

    @property
    def is_dynamic(self) -> bool:
        return self.granularity == "token"

    @property
    def is_grouped(self) -> bool:
        return self.granularity in ("group", "block")

    def with_(self, **changes) -> QuantSpec:
        """A copy with ``changes`` applied (specs are immutable)."""
        return replace(self, **changes)

    def describe(self) -> str:
        """Short text such as ``int8/channel``, ``uint4/group128`` or ``int8/token`` (a fitted codebook is
        shown by its type, ``quantile4``)."""
        fmt = self.format.split(":")[0]
        if self.is_grouped:
            return f"{fmt}/{self.granularity}{self.group_size}"
        return f"{fmt}/{self.granularity}"


def format_limit(fmt: str) -> float:
    """Largest magnitude the symmetric scale maps ``amax`` onto: ``hi`` for integers, ``max`` otherwise."""
    from hwsim.formats import get_format

    spec = get_format(fmt)
    return float(spec.hi) if spec.kind == "int" else float(spec.max)


def quantize_to_spec(x, fmt: str, scale, zero_point=0, *, in_range: bool = False) -> np.ndarray:
    """Codes of real ``x`` in ``fmt`` at ``scale`` (and integer ``zero_point``): the one rounding rule.

    Integer formats: ``clip(rint(x / scale) + zero_point, lo, hi)`` (round half to even); other formats:
    the format's saturating round-to-nearest-even encoder of ``x / scale``. ``scale``/``zero_point``
    broadcast against ``x``. ``in_range=True`` (integer formats): the caller guarantees
    ``lo <= rint(x / scale) + zero_point <= hi`` (e.g. the dynamic per-token rule), so the clip is skipped;
    NaN is still refused.
    """
    from hwsim.formats import get_format

    spec = get_format(fmt)
    v = np.asarray(np.divide(x, np.asarray(scale, np.float64), dtype=np.float64))
    if spec.kind == "int":
        np.rint(v, out=v)
        if np.any(np.asarray(zero_point) != 0):
            v = v + np.asarray(zero_point, np.int64)
        if not in_range:
            np.clip(v, spec.lo, spec.hi, out=v)
        try:
            with np.errstate(invalid="raise"):  # the cast flags NaN (the only value clip leaves out of range)
                return _int_codes(spec, v)
        except FloatingPointError:
            raise ValueError(f"cannot quantize NaN to {fmt} (scale {np.min(scale):.3g}..{np.max(scale):.3g})") \
                from None
    if np.any(np.asarray(zero_point) != 0):
        raise ValueError(f"zero_point applies to integer formats only, not {fmt!r}")
    return spec.encode(v, saturate=True)


def _int_codes(spec, ints: np.ndarray) -> np.ndarray:
    """Two's-complement codes of an integer format from in-range integer-valued floats (no range check)."""
    if spec.bits > 16:
        return spec.int_to_code(ints.astype(np.int64))
    narrow = np.dtype(spec.code_dtype)
    signed = np.dtype(f"i{narrow.itemsize}")
    if not spec.signed:
        return ints.astype(narrow)
    codes = ints.astype(signed)
    if spec.bits < 8 * narrow.itemsize:
        codes &= signed.type(spec.num_codes - 1)
    return codes.view(narrow)


def token_scale(x: np.ndarray, fmt: str) -> np.ndarray:
    """Dynamic per-row scale ``max(|row|) / format_limit`` of ``x`` (shape ``x.shape[:-1] + (1,)``)."""
    x = np.asarray(x)
    x = x if x.dtype.kind == "f" else x.astype(np.float64)
    amax = np.maximum(x.max(axis=-1, keepdims=True), -x.min(axis=-1, keepdims=True)).astype(np.float64)
    return np.maximum(amax, MIN_SCALE) / format_limit(fmt)


def static_scale(amax, fmt: str) -> np.ndarray:
    """Symmetric static scale ``amax / format_limit`` (per tensor or per channel)."""
    return np.maximum(np.asarray(amax, np.float64), MIN_SCALE) / format_limit(fmt)


def asymmetric_params(lo: float, hi: float, fmt: str) -> tuple[float, int]:
    """Scale and zero point mapping ``[min(lo, 0), max(hi, 0)]`` onto an integer format's full range."""
    from hwsim.formats import get_format

    spec = get_format(fmt)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = max(hi - lo, MIN_SCALE) / (spec.hi - spec.lo)
    zero_point = int(np.clip(np.rint(spec.lo - lo / scale), spec.lo, spec.hi))
    return scale, zero_point


def weight_spec(w: np.ndarray, fmt: str, granularity: str = "channel", group_size: int | None = None, *,
                symmetric: bool = True, clip_ratio: float | np.ndarray = 1.0) -> QuantSpec:
    """Quantize a weight ``W[K, N]`` (``y = x @ W``) round-to-nearest and return its spec with codes.

    ``channel`` scales run per output column (axis 1); ``group`` along K (axis 0); MX formats quantize
    in blocks of 32 along K. ``clip_ratio`` (< 1) shrinks the range before rounding (clip search).
    A data-fitted type (``quantile4``, :mod:`hwsim.quantile`) first fits its codebook to ``w`` normalised per
    block; the spec's format is that codebook.
    """
    from hwsim.formats import get_format
    from hwsim.quantize import quantize

    w = np.asarray(w, np.float64)
    if w.ndim != 2:
        raise ValueError(f"weight must be a 2-D [K, N] array, not shape {w.shape!r}")
    spec = get_format(fmt)
    if spec.kind == "quantile":
        spec = spec.fit(w, granularity, group_size)
        fmt = spec.name
    if spec.kind == "mx":
        t = spec.quantize(w, axis=0)
        scale = np.ldexp(1.0, t.scale_codes.astype(np.int64) - 127).astype(np.float64)
        return QuantSpec(fmt, "block", 0, spec.block_size, scale=scale, codes=t.codes)
    if granularity == "group":
        if not isinstance(group_size, int) or group_size < 1 or w.shape[0] % group_size:
            raise ValueError(f"group_size must divide K = {w.shape[0]}, not {group_size!r}")
        q = _quantize_clipped(quantize, w, fmt, "group", 0, group_size, symmetric, clip_ratio)
        zp = None if symmetric else np.asarray(q.zero_point, np.int64).reshape(-1, w.shape[1])
        return QuantSpec(fmt, "group", 0, group_size, scale=np.asarray(q.scale, np.float64).reshape(-1, w.shape[1]),
                         zero_point=zp, codes=q.codes)
    if granularity not in ("tensor", "channel"):
        raise ValueError(f"weight granularity must be tensor, channel, group or an MX format, "
                         f"not {granularity!r}")
    q = _quantize_clipped(quantize, w, fmt, granularity, 1, None, symmetric, clip_ratio)
    scale = np.asarray(q.scale, np.float64).reshape(-1)
    zp = None if symmetric else np.asarray(q.zero_point, np.int64).reshape(-1)
    if granularity == "tensor":
        scale = scale.reshape(())
        zp = None if zp is None else zp.reshape(())
    return QuantSpec(fmt, granularity, 1 if granularity == "channel" else None, None, scale=scale,
                     zero_point=zp, codes=q.codes)


def _quantize_clipped(quantize, w, fmt, granularity, axis, group_size, symmetric, clip_ratio):
    if np.all(np.asarray(clip_ratio) == 1.0):
        return quantize(w, fmt, granularity=granularity, axis=axis, group_size=group_size, symmetric=symmetric)
    # clip: quantize the range-shrunk tensor for the scales, then round the original values at those scales
    q = quantize(w * clip_ratio, fmt, granularity=granularity, axis=axis, group_size=group_size,
                 symmetric=symmetric)
    codes = quantize_to_spec(w, fmt, q.expand(q.scale), q.expand(q.zero_point))
    return replace(q, codes=codes)


def weight_values(spec: QuantSpec) -> np.ndarray:
    """Real values of a weight spec's codes, ``W[K, N]`` (float64)."""
    from hwsim.formats import get_format

    v = get_format(spec.element_format).decode(spec.codes)
    k = spec.codes.shape[0]
    if spec.zero_point is not None:
        v = v - _expand_weight(spec.zero_point, spec, k)
    out = v * _expand_weight(spec.scale, spec, k)
    if spec.offset is not None:
        out = out + _expand_weight(spec.offset, spec, k)
    return out


def _expand_weight(per, spec: QuantSpec, k: int) -> np.ndarray:
    per = np.asarray(per, np.float64)
    if spec.is_grouped:
        return np.repeat(per, spec.group_size, axis=0)[:k]
    return per


@dataclass
class QTensor:
    """Run-time quantized activation: codes of ``fmt`` with ``scale`` and ``zero_point`` broadcast
    against them (per tensor, per row for dynamic specs, per channel along the last axis)."""

    codes: np.ndarray
    fmt: str
    scale: np.ndarray
    zero_point: np.ndarray | int = 0

    def real(self) -> np.ndarray:
        from hwsim.formats import get_format
        from hwsim.gemm import value_operand

        values = np.asarray(value_operand(self.codes, get_format(self.fmt), 0, "codes", np.float64))
        if np.ndim(self.zero_point) or self.zero_point:
            values = values - self.zero_point
        if np.broadcast_shapes(values.shape, np.shape(self.scale)) != values.shape:
            return values * self.scale
        return np.multiply(values, self.scale, out=values)  # our own array: scale in place

    def fixed(self) -> tuple[np.ndarray, int]:
        """Exact fixed-point integers ``F - zero_point`` and their LSB exponent."""
        from hwsim.formats import get_format

        spec = get_format(self.fmt)
        f = spec.to_fixed(self.codes)
        if np.any(np.asarray(self.zero_point) != 0):
            f = f - np.asarray(self.zero_point, np.int64)
        return f, spec.lsb_exponent

    def map(self, fn) -> QTensor:
        """Same scale and zero point, codes moved by ``fn`` (reshape/transpose of per-tensor data)."""
        return QTensor(fn(self.codes), self.fmt, self.scale, self.zero_point)


def _symmetric_int(fmt: str) -> bool:
    """True for signed integer formats, where the dynamic rule ``x / (max|row| / hi)`` rounds into
    ``-hi..hi`` (``fl(amax / fl(amax / hi)) <= hi (1 + 2^-52)`` rounds to ``hi``; Inf/NaN rows still fail)."""
    from hwsim.formats import get_format

    spec = get_format(fmt)
    return spec.kind == "int" and spec.signed


def quantize_activation(x, spec: QuantSpec) -> QTensor:
    """Quantize a real activation with its spec (static scale, or the dynamic per-token rule)."""
    if spec.is_dynamic:
        scale = token_scale(x, spec.format)
        return QTensor(quantize_to_spec(x, spec.format, scale, in_range=_symmetric_int(spec.format)),
                       spec.format, scale, 0)
    if spec.scale is None:
        raise ValueError(f"activation spec {spec.describe()} has no scale: calibrate the graph first")
    zp = 0 if spec.zero_point is None else spec.zero_point
    return QTensor(quantize_to_spec(x, spec.format, spec.scale, zp), spec.format,
                   np.asarray(spec.scale, np.float64), zp)
