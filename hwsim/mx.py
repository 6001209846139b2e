"""OCP Microscaling (MX v1.0) block formats.

A block of ``block_size`` (32) consecutive elements along one axis shares one ``float8_e8m0fnu``
power-of-two scale.  Quantization follows the OCP MX v1.0 specification, section 6.3:

* ``shared_exp = floor(log2(amax)) - emax_elem`` where ``amax`` is the block's largest magnitude and
  ``emax_elem`` the exponent of the element format's largest normal (2 for FP4 E2M1, 2 for FP6 E2M3,
  4 for FP6 E3M2, 8 for FP8 E4M3, 15 for FP8 E5M2, 0 for INT8); it is clamped to the E8M0 range
  ``[-127, 127]``; an all-zero block gets the smallest scale ``2**-127``;
* each element ``x / 2**shared_exp`` is rounded to nearest even and saturated to the element format.

MXINT8 elements are int8 two's-complement codes with an implicit scale of ``2**-6`` (1.6 fixed point),
saturated symmetrically to ``±127``.  A block holding NaN or Inf gets the NaN scale code 0xFF.

Importing this module registers the MX formats in :mod:`hwsim.formats`' registry
(:func:`hwsim.formats.register_format`); ``import hwsim`` does so, so ``get_format("mxfp4")`` always
works while :mod:`hwsim.formats` never imports this module (no import cycle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.formats import ElementFormat, FloatFormat, as_float64, get_format, register_format

__all__ = ["MX_FORMATS", "MXFormat", "MXTensor"]

SCALE_BIAS = 127
SCALE_NAN_CODE = 0xFF


@dataclass(frozen=True)
class MXTensor:
    """An MX-quantized tensor: element codes plus one E8M0 scale code per block along ``axis``."""

    codes: np.ndarray
    scale_codes: np.ndarray
    format: MXFormat
    axis: int

    def dequantize(self) -> np.ndarray:
        """Float64 values (exact)."""
        return self.format.dequantize(self)


@dataclass(frozen=True, kw_only=True)
class MXFormat:
    """An MX block format: element format, block size and the E8M0 shared scale."""

    name: str
    element: ElementFormat
    emax: int
    element_exponent: int = 0
    block_size: int = 32
    kind = "mx"

    @property
    def bits(self) -> int:
        """Bits per element (the shared scale adds 8 bits per block)."""
        return self.element.bits

    @property
    def scale(self) -> FloatFormat:
        return get_format("float8_e8m0fnu")

    @property
    def element_max(self) -> float:
        """Largest element magnitude before the shared scale (implicit element exponent included)."""
        if self.element.kind == "int":
            return math.ldexp(self.element.hi, self.element_exponent)
        return math.ldexp(self.element.max, self.element_exponent)

    def _blocks(self, x: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
        """Move ``axis`` last and split it into blocks (zero-padded); returns (blocks, original length)."""
        moved = np.moveaxis(x, axis, -1)
        length = moved.shape[-1]
        pad = (-length) % self.block_size
        if pad:
            moved = np.concatenate([moved, np.zeros(moved.shape[:-1] + (pad,), dtype=moved.dtype)], axis=-1)
        return moved.reshape(moved.shape[:-1] + (-1, self.block_size)), length

    def shared_exponent(self, blocks: np.ndarray) -> np.ndarray:
        """Unbiased shared exponent per block (int64), before NaN handling."""
        amax = np.max(np.abs(np.where(np.isfinite(blocks), blocks, 0.0)), axis=-1)
        safe = np.where(amax > 0, amax, 1.0)
        exponent = np.floor(np.log2(safe)).astype(np.int64)
        # floor(log2) from float64 log2 can be off by one right at powers of two: correct exactly
        exponent += (np.ldexp(1.0, exponent + 1) <= safe).astype(np.int64)
        exponent -= (np.ldexp(1.0, exponent) > safe).astype(np.int64)
        shared = exponent - self.emax
        shared = np.where(amax > 0, shared, -SCALE_BIAS)
        return np.clip(shared, -SCALE_BIAS, SCALE_BIAS)

    def quantize(self, x, axis: int = -1) -> MXTensor:
        """Quantize ``x`` into blocks of ``block_size`` along ``axis``."""
        x = as_float64(x)
        if x.ndim == 0:
            raise ValueError(f"{self.name}: x must have at least one dimension, not a scalar {float(x)!r}")
        axis = axis % x.ndim
        blocks, length = self._blocks(x, axis)
        shared = self.shared_exponent(blocks)
        scaled = blocks / np.ldexp(1.0, shared)[..., None]
        scaled = np.ldexp(scaled, -self.element_exponent)
        if self.element.kind == "int":
            codes = self.element.int_to_code(np.clip(np.rint(np.nan_to_num(scaled)), -self.element.hi,
                                                      self.element.hi))
        else:
            codes = self.element.encode(scaled, saturate=True)
        special = ~np.all(np.isfinite(blocks), axis=-1)
        scale_codes = np.where(special, SCALE_NAN_CODE, shared + SCALE_BIAS).astype(np.uint8)
        codes = codes.reshape(codes.shape[:-2] + (-1,))[..., :length]
        return MXTensor(codes=np.moveaxis(codes, -1, axis), scale_codes=np.moveaxis(scale_codes, -1, axis),
                        format=self, axis=axis)

    def element_values(self, codes) -> np.ndarray:
        """Element values including the implicit element exponent, before the shared scale."""
        return np.ldexp(self.element.decode(codes), self.element_exponent)

    def dequantize(self, tensor: MXTensor) -> np.ndarray:
        """Float64 values of an :class:`MXTensor` (NaN for blocks with the NaN scale)."""
        axis = tensor.axis
        values = np.moveaxis(self.element_values(tensor.codes), axis, -1)
        scales = np.moveaxis(tensor.scale_codes.astype(np.int64), axis, -1)
        per_element = np.repeat(scales, self.block_size, axis=-1)[..., : values.shape[-1]]
        out = np.ldexp(values, (per_element - SCALE_BIAS).astype(np.int32))
        out = np.where(per_element == SCALE_NAN_CODE, np.nan, out)
        return np.moveaxis(out, -1, axis)

    def describe(self) -> dict:
        """One row of the ``hwsim formats`` table (element values times the largest/smallest scale)."""
        return {
            "name": self.name, "kind": self.kind, "bits": self.bits,
            "min": -self.element_max * 2.0**SCALE_BIAS, "max": self.element_max * 2.0**SCALE_BIAS,
            "min_normal": math.ldexp(self.element.min_normal, self.element_exponent - SCALE_BIAS),
            "min_subnormal": math.ldexp(self.element.min_subnormal,
                                                                    self.element_exponent - SCALE_BIAS),
            "nan": True, "inf": False,
        }


def _build() -> dict[str, MXFormat]:
    specs = [
        ("mxfp4", "float4_e2m1fn", 2, 0),
        ("mxfp6_e2m3", "float6_e2m3fn", 2, 0),
        ("mxfp6_e3m2", "float6_e3m2fn", 4, 0),
        ("mxfp8_e4m3", "float8_e4m3fn", 8, 0),
        ("mxfp8_e5m2", "float8_e5m2", 15, 0),
        ("mxint8", "int8", 0, -6),
    ]
    return {name: MXFormat(name=name, element=get_format(elem), emax=emax, element_exponent=exp)
            for name, elem, emax, exp in specs}


MX_FORMATS: dict[str, MXFormat] = _build()
for _spec in MX_FORMATS.values():
    register_format(_spec)
