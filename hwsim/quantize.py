"""Quantizers: real tensors to codes of a registered format, with scales (and zero points).

Uniform integer quantization as in the course lecture:

* symmetric: ``s = amax / q_max``, ``z = 0``, ``q = clamp(round(x / s), q_min, q_max)``;
* asymmetric: ``s = (max - min) / (q_max - q_min)`` over a range widened to include 0,
  ``z = clamp(round(q_min - min / s), q_min, q_max)``, ``q = clamp(round(x / s) + z, q_min, q_max)``;

rounding is to nearest even.  Float, dINT and codebook formats use ``s = amax / format.max`` and the
format's own encoder (round to nearest, saturating).  ``pow2_scale`` rounds ``s`` up to a power of two.

Granularity: ``"tensor"`` (one scale), ``"channel"`` (one scale per index of ``axis``), ``"group"``
(one scale per ``group_size`` consecutive elements along ``axis``, for every index of the other axes).
MX formats quantize in blocks of 32 along ``axis`` through :mod:`hwsim.mx`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.formats import ElementFormat, as_float64, get_format

__all__ = ["QuantizedTensor", "dequantize", "fake_quantize", "quantize"]

GRANULARITIES = ("tensor", "channel", "group")


@dataclass(frozen=True)
class QuantizedTensor:
    """Codes plus the scale and zero point that map them back to real values.

    ``scale`` and ``zero_point`` have the reduced shape of their granularity (size 1 on reduced axes,
    ``n_groups`` on the grouped axis) and expand to ``codes``' shape with :meth:`expand`.
    """

    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    format: ElementFormat
    granularity: str
    axis: int
    group_size: int | None = None

    def expand(self, per_group: np.ndarray) -> np.ndarray:
        """Broadcast a per-scale array (``scale`` or ``zero_point``) to the codes' shape."""
        return _expand(per_group, self.granularity, self.axis, self.group_size, self.codes.shape)

    def values(self) -> np.ndarray:
        """Integer (or format) values of the codes before scaling, minus the zero point."""
        return self.format.decode(self.codes) - self.expand(self.zero_point)

    def dequantize(self) -> np.ndarray:
        """Real values ``(value - zero_point) * scale`` (float64)."""
        return self.values() * self.expand(self.scale)


def _expand(per_group, granularity, axis, group_size, shape) -> np.ndarray:
    if granularity == "group":
        per_group = np.repeat(per_group, group_size, axis=axis)
    return np.broadcast_to(per_group, shape)


def _reduce(x: np.ndarray, granularity: str, axis: int, group_size: int | None, func) -> np.ndarray:
    """Apply ``func`` (e.g. ``np.max``) over each quantization group, keeping reduced dimensions."""
    if granularity == "tensor":
        return func(x, axis=None, keepdims=True)
    if granularity == "channel":
        others = tuple(i for i in range(x.ndim) if i != axis)
        return func(x, axis=others, keepdims=True)
    shape = x.shape[:axis] + (x.shape[axis] // group_size, group_size) + x.shape[axis + 1:]
    return func(x.reshape(shape), axis=axis + 1)


def _check(x, fmt, granularity, axis, group_size):
    x = as_float64(x)
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite to compute a scale, not an array holding NaN/Inf")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    if x.ndim == 0:
        x = x.reshape(1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must lie in {-x.ndim}..{x.ndim - 1} for a {x.ndim}-D x, not {axis!r}")
    axis %= x.ndim
    if granularity == "group":
        if not isinstance(group_size, int) or group_size < 1:
            raise ValueError(f"group_size must be a positive integer for group granularity, not {group_size!r}")
        if x.shape[axis] % group_size:
            raise ValueError(f"group_size must divide the length {x.shape[axis]} of axis {axis}, "
                             f"not {group_size!r}")
    return x, axis


def _pow2(scale: np.ndarray) -> np.ndarray:
    """Smallest power of two >= scale (exact: from the binary exponent, not a float log2)."""
    mantissa, exponent = np.frexp(scale)
    return np.ldexp(1.0, exponent - (mantissa == 0.5))


def quantize(x, fmt, *, granularity: str = "tensor", axis: int = -1, group_size: int | None = None,
             symmetric: bool = True, pow2_scale: bool = False):
    """Quantize a real tensor to codes of ``fmt``.

    Parameters
    ----------
    x : array_like of float
        Real values.
    fmt : str or format spec
        Target format (integer, float, dINT, codebook, or MX block format).
    granularity : {"tensor", "channel", "group"}
    axis : int
        Channel axis (``"channel"``) or grouped axis (``"group"``); MX blocks run along it.
    group_size : int, optional
        Elements per group along ``axis`` (``"group"`` only), e.g. 32, 64, 128.
    symmetric : bool
        Symmetric (zero point 0) or asymmetric (integer formats only).
    pow2_scale : bool
        Round each scale up to a power of two.

    Returns
    -------
    QuantizedTensor, or :class:`hwsim.mx.MXTensor` for MX formats.
    """
    spec = get_format(fmt)
    if spec.kind == "mx":
        return spec.quantize(x, axis=axis)
    x, axis = _check(x, spec, granularity, axis, group_size)
    if spec.kind == "int" and not symmetric:
        lo = np.minimum(_reduce(x, granularity, axis, group_size, np.min), 0.0)
        hi = np.maximum(_reduce(x, granularity, axis, group_size, np.max), 0.0)
        scale = (hi - lo) / (spec.hi - spec.lo)
    else:
        if not symmetric:
            raise ValueError(f"asymmetric quantization needs an integer format, not {spec.name!r}")
        amax = _reduce(np.abs(x), granularity, axis, group_size, np.max)
        scale = amax / (spec.hi if spec.kind == "int" else spec.max)
    scale = np.where(scale > 0, scale, 1.0)
    if pow2_scale:
        scale = _pow2(scale)
    zero_point = np.zeros(scale.shape, dtype=np.int64)
    if spec.kind == "int" and not symmetric:
        zero_point = np.clip(np.rint(spec.lo - lo / scale), spec.lo, spec.hi).astype(np.int64)
    scaled = x / _expand(scale, granularity, axis, group_size, x.shape)
    if spec.kind == "int":
        ints = np.clip(np.rint(scaled) + _expand(zero_point, granularity, axis, group_size, x.shape),
                       spec.lo, spec.hi)
        codes = spec.int_to_code(ints.astype(np.int64))
    else:
        codes = spec.encode(scaled, saturate=True)
    return QuantizedTensor(codes=codes, scale=scale, zero_point=zero_point, format=spec,
                           granularity=granularity, axis=axis, group_size=group_size)


def dequantize(tensor) -> np.ndarray:
    """Real values of a :class:`QuantizedTensor` or :class:`hwsim.mx.MXTensor` (float64)."""
    return tensor.dequantize()


def fake_quantize(x, fmt, **options) -> np.ndarray:
    """Quantize then dequantize (the round trip), same shape as ``x``."""
    return dequantize(quantize(x, fmt, **options))
