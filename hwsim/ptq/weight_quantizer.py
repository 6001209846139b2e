"""The weight quantizer shared by GPTQ and AWQ: a format + granularity, applied to whole weights or row by row.

Weights are ``W[K, N]`` (``y = x @ W``). A :class:`WeightQuantizer` turns a weight into a
:class:`hwsim.qspec.QuantSpec` round-to-nearest (:func:`hwsim.qspec.weight_spec`, optionally with the
per-column/group MSE clip search of :mod:`hwsim.ptq.rtn`) and, for GPTQ, quantizes one K-row at a time
at fixed scales with the one scale-and-round rule :func:`hwsim.qspec.quantize_to_spec`. Any registered
weight format works: int/uint (symmetric or with zero points), dINT, FP4/FP8, NF4 and other codebooks,
and MX formats with float elements (block scales of 32 rows along K).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.formats import get_format
from hwsim.qspec import QuantSpec, quantize_to_spec, weight_spec, weight_values

GRANULARITY_CHOICES = ("tensor", "channel", "group")


@dataclass(frozen=True)
class WeightQuantizer:
    """Format, granularity, group size, symmetry and clip rule of a weight quantizer."""

    fmt: str
    granularity: str = "channel"
    group_size: int | None = None
    symmetric: bool = True
    clip: str = "minmax"

    @classmethod
    def from_params(cls, p: dict) -> WeightQuantizer:
        return cls(p["weights"], p["granularity"], p["group_size"] if p["granularity"] == "group" else None,
                   bool(p["symmetric"]), p.get("clip", "minmax"))

    @property
    def is_mx(self) -> bool:
        return get_format(self.fmt).kind == "mx"

    @property
    def rows_per_scale(self) -> int | None:
        """K-rows sharing one scale row (group size, MX block) or None (one scale row for all of K)."""
        if self.is_mx:
            return get_format(self.fmt).block_size
        return self.group_size if self.granularity == "group" else None

    def check_shape(self, k: int) -> str | None:
        """Why a weight with ``k`` rows cannot be quantized (None when it can)."""
        g = self.rows_per_scale
        if g is not None and k % g:
            return f"group_size {g} does not divide K = {k}"
        return None

    def spec(self, w: np.ndarray) -> QuantSpec:
        """Round-to-nearest spec of ``w`` (with the MSE clip search when ``clip == 'mse'``)."""
        from hwsim.ptq.rtn import _mse_clip

        w = np.asarray(w, np.float64)
        ratio = 1.0
        if self.clip == "mse" and not self.is_mx:
            ratio = _mse_clip(w, self.fmt, self.granularity, self.group_size, self.symmetric)
        return weight_spec(w, self.fmt, self.granularity, self.group_size, symmetric=self.symmetric,
                           clip_ratio=ratio)

    def dequantize(self, w: np.ndarray) -> np.ndarray:
        """``w`` quantized round-to-nearest and dequantized (float64)."""
        return weight_values(self.spec(w))


def scale_rows(spec: QuantSpec, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-K-row scale and zero point ``[K, N]`` (or ``[1, N]``) of a weight spec, as used on its codes."""
    scale = np.asarray(spec.scale, np.float64)
    zp = np.zeros_like(scale) if spec.zero_point is None else np.asarray(spec.zero_point, np.float64)
    if spec.is_grouped:
        return np.repeat(scale, spec.group_size, axis=0)[:k], np.repeat(zp, spec.group_size, axis=0)[:k]
    return scale.reshape(1, -1), zp.reshape(1, -1)


def quantize_row(x: np.ndarray, spec: QuantSpec, scale: np.ndarray, zero_point: np.ndarray):
    """Codes and dequantized values of one K-row ``x[N]`` at fixed ``scale``/``zero_point`` ``[N]``.

    The codes follow :func:`hwsim.qspec.quantize_to_spec` and the values :func:`hwsim.qspec.weight_values`
    (so a row quantized here is exactly what the integer executor reads).
    """
    fmt = get_format(spec.format)
    if fmt.kind == "mx":
        step = np.ldexp(scale, fmt.element_exponent)
        codes = quantize_to_spec(x, spec.element_format, step)
        return codes, get_format(spec.element_format).decode(codes) * scale
    zp = zero_point.astype(np.int64) if spec.zero_point is not None else 0
    codes = quantize_to_spec(x, spec.format, scale, zp)
    values = get_format(spec.format).decode(codes)
    if spec.zero_point is not None:
        values = values - zero_point
    return codes, values * scale
