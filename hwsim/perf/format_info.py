"""The few facts the performance and energy models need about a number format.

All lookups go through :func:`format_info`, which asks the core registry
(:func:`hwsim.formats.get_format`) and adds the wide IEEE formats the vector units use
(``float32``, ``float16``, ``bfloat16``) which are not element formats of the registry.
MX block formats count their element width plus the shared 8-bit scale amortised over the block.

Scales of grouped weights (:func:`weight_storage_bits`): a weight quantized in groups of ``g`` along K
stores one :data:`GROUP_SCALE_BITS`-bit (float16) scale per group and, for an unsigned (zero-point)
format, one zero point of the code width, i.e. ``bits + (16 + zp_bits) / g`` bits per weight
(int4 g128: 4.125; uint4 g128: 4.156). Per-tensor and per-channel scales are not counted (one per
tensor or output column: below 0.1 % of the weight bytes for K >= 64).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class FormatInfo:
    """Width and arithmetic class of a format, as the models use them.

    Attributes
    ----------
    name : str
    bits : int
        Bits of one element code.
    storage_bits : float
        Bits per element in memory (MX: element bits + scale bits / block size).
    kind : {"int", "float"}
        Arithmetic class of a multiplier for this format. dINT and codebook formats are integer
        multipliers of their code width (a dINT level is a two's-complement integer; a codebook code
        indexes a table whose entries the PE multiplies as integers of the same width).
    mantissa_bits : int
        Stored fraction bits (float) - 0 for integer kinds.
    exponent_bits : int
    """

    name: str
    bits: int
    storage_bits: float
    kind: str
    mantissa_bits: int = 0
    exponent_bits: int = 0

    @property
    def significand_bits(self) -> int:
        """Significand width including the hidden bit (floats) or the integer width."""
        return self.mantissa_bits + 1 if self.kind == "float" else self.bits


_WIDE_FLOATS = {
    "float32": (32, 8, 23),
    "float16": (16, 5, 10),
    "bfloat16": (16, 8, 7),
}


@cache
def format_info(name: str) -> FormatInfo:
    """Return :class:`FormatInfo` for a registry format name or ``float32``/``float16``/``bfloat16``.

    Raises ``ValueError`` (``unknown format ..., not 'x'``) for names the registry does not know.
    """
    if not isinstance(name, str):
        raise TypeError(f"format name must be a string, not {name!r}")
    if name in _WIDE_FLOATS:
        bits, e, m = _WIDE_FLOATS[name]
        return FormatInfo(name, bits, float(bits), "float", m, e)
    from hwsim.formats import get_format

    try:
        spec = get_format(name)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"unknown number format; expected a registry name such as 'int8' or "
                         f"'float8_e4m3fn', not {name!r}") from exc
    storage = float(spec.bits)
    kind = getattr(spec, "kind", "int")
    if kind == "mx":
        block = int(getattr(spec, "block_size", 32))
        scale_bits = int(getattr(getattr(spec, "scale", None), "bits", 8))
        spec = spec.element
        kind = getattr(spec, "kind", "int")
        storage = spec.bits + scale_bits / block
    if kind == "float":
        return FormatInfo(name, int(spec.bits), storage, "float", int(spec.mantissa_bits),
                          int(spec.exponent_bits))
    return FormatInfo(name, int(spec.bits), storage, "int")


#: Bits of one stored group scale (float16, as GPTQ/AWQ/GGUF checkpoints store them).
GROUP_SCALE_BITS = 16


@cache
def multiplier_format(name: str) -> str:
    """The format a PE multiplier sees for operand format ``name``: an MX block format's element
    format (its shared scale is applied in the epilogue), else ``name`` itself."""
    from hwsim.formats import get_format

    if name in _WIDE_FLOATS:
        return name
    spec = get_format(name)
    return spec.element.name if getattr(spec, "kind", None) == "mx" else name


@cache
def weight_storage_bits(name: str, group_size: int = 0) -> float:
    """Stored bits per weight element of ``name`` with ``group_size``-element groups (0: no groups);
    see the module docstring for the group-scale rule. MX formats already include their block scale."""
    from hwsim.formats import get_format

    info = format_info(name)
    spec = None if name in _WIDE_FLOATS else get_format(name)
    if not group_size or getattr(spec, "kind", None) == "mx":
        return info.storage_bits
    zero_point_bits = info.bits if getattr(spec, "kind", "") == "int" and not getattr(spec, "signed", True) else 0
    return info.storage_bits + (GROUP_SCALE_BITS + zero_point_bits) / group_size


def known_format(name) -> bool:
    """True when :func:`format_info` accepts ``name``."""
    try:
        format_info(name)
    except (TypeError, ValueError):
        return False
    return True
