"""Number formats: one registry of frozen spec objects, encodings derived from parameters.

Every element format (``IntFormat``, ``FloatFormat``, ``DintFormat``, ``CodebookFormat``) maps an
unsigned *code* (the raw bit pattern, ``0 .. 2**bits - 1``) to a value.  All formats here have at most
16 bits, so each spec derives, once, a table of every code's value; ``decode`` is a table lookup and
``encode`` a vectorised nearest-value search with the format's tie rule.

The exact *fixed-point view* is the rule the PE hardware builds and the golden GEMM uses: every
finite value is an integer ``F`` times ``2**lsb_exponent``, where ``lsb_exponent`` is the weight of the
format's least significant bit (the smallest subnormal step of a float format, 1 for integers,
``alpha``'s last bit for dINT).  ``fixed_bits`` is the width of the signed integer ``F``.

Format names follow ml_dtypes where one exists.  Float formats reproduce ml_dtypes' conversions bit for
bit (round to nearest even; ``saturate=False`` gives the format's own overflow behaviour: NaN for
``float8_e4m3fn``, Inf for ``float8_e5m2``, saturation for the ``fn`` 4/6-bit formats that have neither).
One documented quirk kept for fidelity: ml_dtypes rounds ``float8_e8m0fnu`` ties away from zero (toward
the larger power of two) rather than to even.

dINT (Lee et al., EMNLP 2023): a b-bit two's-complement code whose nonzero integers
``±1 … ±(2**(b-1) - 1)`` are regular levels and whose two remaining codes, ``0`` and ``-2**(b-1)``, are the
denormal levels ``+alpha`` and ``-alpha`` (alpha = 0.5 by default).  It has no exact zero.  Other
special values are named ``dint4_a0.375`` (:func:`dint_with_alpha`; the per-layer alpha search of
:mod:`hwsim.ptq.dint_alpha`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property

import numpy as np

__all__ = [
    "CodebookFormat",
    "DintFormat",
    "dint_with_alpha",
    "ElementFormat",
    "FloatFormat",
    "IntFormat",
    "get_format",
    "list_formats",
    "nf4_codebook",
    "register_format",
    "register_resolver",
]

_MAX_TABLE_BITS = 16


def _code_dtype(bits: int) -> type:
    return np.uint8 if bits <= 8 else np.uint16


@dataclass(frozen=True, kw_only=True)
class ElementFormat:
    """Base class of every element number format.

    Subclasses derive ``_value_table`` (float64 value of every code) from their parameters and
    implement ``_encode_finite``.  All array methods are vectorised.
    """

    name: str
    bits: int

    kind = "abstract"
    signed = True
    has_nan = False
    has_inf = False

    # ------------------------------------------------------------------ tables
    @cached_property
    def _value_table(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @cached_property
    def _special_mask(self) -> np.ndarray:
        return ~np.isfinite(self._value_table)

    def cast_values(self, codes: np.ndarray, dtype) -> np.ndarray | None:
        """Values of raw ``codes`` in ``dtype`` by one cast, or None when that needs a table (here: always;
        integer formats override it)."""
        return None

    @cached_property
    def has_special_codes(self) -> bool:
        """True when some code of the format is NaN or ±Inf (lets callers skip :meth:`is_special` passes)."""
        return bool(self._special_mask.any())

    @cached_property
    def _fixed_table(self) -> tuple[np.ndarray, int]:
        """``(F, lsb_exponent)`` with value == F * 2**lsb_exponent for every finite code."""
        finite = self._value_table[~self._special_mask]
        fractions = [Fraction(float(v)) for v in np.unique(finite) if v != 0]
        lsb = min((-int(math.log2(f.denominator)) if f.denominator > 1 else _trailing_zeros(f.numerator)
                   for f in fractions), default=0)
        scale = Fraction(2) ** (-lsb)
        largest = max((abs(f) * scale for f in fractions), default=Fraction(0))
        if largest >= 2**62:
            raise ValueError(f"{self.name} spans too many binades for an int64 fixed-point view, not "
                             f"{largest.numerator.bit_length()} bits")
        fixed = np.array([0 if not np.isfinite(v) else int(Fraction(float(v)) * scale)
                          for v in self._value_table], dtype=np.int64)
        return fixed, lsb

    # ------------------------------------------------------------------ public API
    @property
    def num_codes(self) -> int:
        return 1 << self.bits

    @property
    def code_dtype(self) -> type:
        """Smallest unsigned numpy dtype holding every code."""
        return _code_dtype(self.bits)

    def values(self) -> np.ndarray:
        """Value of every code, indexed by code (float64; NaN/Inf where the format has them)."""
        return self._value_table.copy()

    def decode(self, codes) -> np.ndarray:
        """Decode raw codes to float64 values (exact)."""
        return self._value_table[self.check_codes(codes)]

    def encode(self, x, *, saturate: bool = True) -> np.ndarray:
        """Encode real values to codes, rounding to the nearest representable value.

        Parameters
        ----------
        x : array_like of float
            Values (float32 or float64; compared exactly, no double rounding).
        saturate : bool
            ``True`` (default) clamps out-of-range values and ±Inf to ±max; ``False`` applies the
            format's own overflow behaviour (NaN / Inf code, wrap-around for integers).
        """
        x = as_float64(x)
        return self._encode_finite(x, saturate=saturate).astype(self.code_dtype, copy=False)

    def check_codes(self, codes, argument: str = "codes") -> np.ndarray:
        """Return ``codes`` as an integer array after checking every code is in range."""
        arr = np.asarray(codes)
        if arr.dtype.kind == "u" and arr.dtype.itemsize * 8 <= self.bits:
            return arr.astype(np.intp, copy=False)  # every value of the dtype is a valid code
        if arr.dtype.kind not in "iub":
            raise TypeError(f"{argument} for {self.name} must be an integer array of raw codes, "
                            f"not dtype {arr.dtype.name!r}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.num_codes):
            bad = arr[(arr < 0) | (arr >= self.num_codes)].flat[0]
            raise ValueError(f"{argument} for {self.name} must lie in 0..{self.num_codes - 1}, not {int(bad)!r}")
        return arr.astype(np.intp, copy=False)

    def is_special(self, codes) -> np.ndarray:
        """Boolean mask of NaN/Inf codes."""
        return self._special_mask[self.check_codes(codes)]

    def to_fixed(self, codes) -> np.ndarray:
        """Exact fixed-point integers ``F`` (int64) with value == F * 2**lsb_exponent (NaN/Inf -> 0)."""
        return self._fixed_table[0][self.check_codes(codes)]

    def value_lookup(self, dtype) -> np.ndarray | None:
        """Table of values by code in ``dtype`` (e.g. float32 for BLAS operands); None if too many codes.

        Callers must only use a dtype that represents every value exactly (float32 does for every
        format of at most 8 bits here).
        """
        key = np.dtype(dtype).name
        cache = self.__dict__.setdefault("_value_lookups", {})
        if key not in cache:
            cache[key] = self._value_table.astype(dtype)
        return cache[key]

    @property
    def lsb_exponent(self) -> int:
        """Exponent of the weight of the fixed-point LSB (value = F * 2**lsb_exponent)."""
        return self._fixed_table[1]

    @property
    def fixed_bits(self) -> int:
        """Width in bits of the signed fixed-point integer F (sign bit included)."""
        return max(_signed_width(self.fixed_min), _signed_width(self.fixed_max))

    @property
    def fixed_min(self) -> int:
        """Most negative fixed-point integer F of any finite code."""
        return int(self._fixed_table[0].min())

    @property
    def fixed_max(self) -> int:
        """Largest fixed-point integer F of any finite code."""
        return int(self._fixed_table[0].max())

    @property
    def max(self) -> float:
        """Largest finite value."""
        return float(np.max(self._value_table[~self._special_mask]))

    @property
    def min(self) -> float:
        """Most negative finite value."""
        return float(np.min(self._value_table[~self._special_mask]))

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value."""
        table = self._value_table[~self._special_mask]
        return float(np.min(table[table > 0]))

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value (equals ``min_subnormal`` for formats without subnormals)."""
        return self.min_subnormal

    def describe(self) -> dict:
        """One row of the ``hwsim formats`` table."""
        return {
            "name": self.name, "kind": self.kind, "bits": self.bits, "min": self.min, "max": self.max,
            "min_normal": self.min_normal, "min_subnormal": self.min_subnormal,
            "nan": self.has_nan, "inf": self.has_inf,
        }

    # ------------------------------------------------------------------ helpers
    def _nearest_code(self, magnitude: np.ndarray, levels: np.ndarray, codes: np.ndarray,
                      tie_up: np.ndarray) -> np.ndarray:
        """Index into ``codes`` of the level nearest each magnitude.

        ``levels`` is ascending; ``tie_up[i]`` says whether a tie between ``levels[i]`` and
        ``levels[i+1]`` goes to the upper level.  Inputs are compared with the exact midpoints (the
        levels are dyadic with few bits, so ``(lo + hi) / 2`` is exact in float64): subtracting instead
        would create false ties for levels of opposite sign.
        """
        upper = np.clip(np.searchsorted(levels, magnitude, side="left"), 1, len(levels) - 1)
        lower = upper - 1
        midpoint = (levels[lower] + levels[upper]) / 2
        pick_upper = (magnitude > midpoint) | ((magnitude == midpoint) & tie_up[lower])
        return codes[np.where(pick_upper, upper, lower)]

    def __str__(self) -> str:
        return self.name


def as_float64(x) -> np.ndarray:
    """``x`` as a float64 array; signaling NaNs convert quietly (numpy flags FE_INVALID for them)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(x, dtype=np.float64)


def _signed_width(value: int) -> int:
    """Bits of the narrowest two's-complement register holding ``value``."""
    return (value.bit_length() if value >= 0 else (-value - 1).bit_length()) + 1


def _trailing_zeros(n: int) -> int:
    n = abs(n)
    return (n & -n).bit_length() - 1


@dataclass(frozen=True, kw_only=True)
class IntFormat(ElementFormat):
    """Two's-complement (``signed``) or unsigned integer of ``bits`` bits."""

    signed: bool = True
    kind = "int"

    def __post_init__(self):
        _check_bits(self.name, self.bits, 2, 32)

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @cached_property
    def _value_table(self) -> np.ndarray:
        codes = np.arange(self.num_codes, dtype=np.int64)
        return self.code_to_int(codes).astype(np.float64)

    # Integers need no value table (widths up to 32 bits): decode arithmetically.
    def decode(self, codes) -> np.ndarray:
        return self.code_to_int(self.check_codes(codes)).astype(np.float64)

    def values(self) -> np.ndarray:
        if self.bits > _MAX_TABLE_BITS:
            raise ValueError(f"{self.name} has too many codes to list, not {self.bits!r} bits")
        return self._value_table.copy()

    def is_special(self, codes) -> np.ndarray:
        return np.zeros(np.shape(self.check_codes(codes)), dtype=bool)

    has_special_codes = False

    def to_fixed(self, codes) -> np.ndarray:
        return self.code_to_int(self.check_codes(codes))

    def cast_values(self, codes: np.ndarray, dtype) -> np.ndarray | None:
        """Values of unsigned raw ``codes`` in ``dtype`` by one cast, when every value of the code dtype is a
        code of this format (8/16/32-bit two's complement or unsigned); else None (use a table)."""
        if codes.dtype.kind != "u" or codes.dtype.itemsize * 8 != self.bits:
            return None
        return (codes.view(f"i{codes.dtype.itemsize}") if self.signed else codes).astype(dtype)

    def value_lookup(self, dtype) -> np.ndarray | None:
        if self.bits > _MAX_TABLE_BITS:
            return None
        key = np.dtype(dtype).name
        cache = self.__dict__.setdefault("_value_lookups", {})
        if key not in cache:
            cache[key] = self.code_to_int(np.arange(self.num_codes)).astype(dtype)
        return cache[key]

    @property
    def lsb_exponent(self) -> int:
        return 0

    @property
    def fixed_bits(self) -> int:
        return self.bits + (0 if self.signed else 1)

    @property
    def fixed_min(self) -> int:
        return self.lo

    @property
    def fixed_max(self) -> int:
        return self.hi

    @property
    def max(self) -> float:
        return float(self.hi)

    @property
    def min(self) -> float:
        return float(self.lo)

    @property
    def min_subnormal(self) -> float:
        return 1.0

    @property
    def code_dtype(self) -> type:
        return np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else np.uint32

    def code_to_int(self, codes) -> np.ndarray:
        """Integer value (int64) of raw codes."""
        arr = np.asarray(codes)
        cast = self.cast_values(arr, np.int64)
        if cast is not None:
            return cast
        if arr.dtype.kind == "u" and arr.dtype.itemsize * 8 <= self.bits <= 16:
            return self._int_table[arr]  # every value of the dtype is a code: one table lookup
        codes = np.asarray(arr, dtype=np.int64)
        if not self.signed:
            return codes
        return np.where(codes >= (1 << (self.bits - 1)), codes - (1 << self.bits), codes)

    @cached_property
    def _int_table(self) -> np.ndarray:
        codes = np.arange(self.num_codes, dtype=np.int64)
        return np.where(codes >= (1 << (self.bits - 1)), codes - (1 << self.bits), codes) if self.signed else codes

    def int_to_code(self, ints) -> np.ndarray:
        """Raw codes of in-range integers (two's complement for signed formats)."""
        ints = np.asarray(ints, dtype=np.int64)
        if ints.size and (ints.min() < self.lo or ints.max() > self.hi):
            raise ValueError(f"integers for {self.name} must lie in {self.lo}..{self.hi}")
        width = np.dtype(self.code_dtype).itemsize
        if self.bits == 8 * width:  # full width: the two's-complement cast is the code
            return ints.astype(f"i{width}" if self.signed else self.code_dtype).view(self.code_dtype)
        return (ints & (self.num_codes - 1)).astype(self.code_dtype)

    def _encode_finite(self, x: np.ndarray, *, saturate: bool) -> np.ndarray:
        if np.isnan(x).any():
            raise ValueError(f"x contains NaN; {self.name} has no NaN code, not {float('nan')!r}")
        rounded = np.rint(x)  # round half to even
        if saturate:
            ints = np.clip(rounded, self.lo, self.hi).astype(np.int64)
        else:
            if np.isinf(x).any():
                raise ValueError(f"x contains Inf; {self.name} cannot wrap Inf, not {float('inf')!r}")
            ints = np.mod(rounded, float(self.num_codes)).astype(np.int64)
        return ints & (self.num_codes - 1)


@dataclass(frozen=True, kw_only=True)
class FloatFormat(ElementFormat):
    """Binary floating-point format with ``exponent_bits``/``mantissa_bits`` and exponent ``bias``.

    ``inf_nan`` selects the special-value convention:

    * ``"ieee"``: exponent all ones is Inf (mantissa 0) or NaN (float8_e5m2);
    * ``"fn"``: only the all-ones exponent-and-mantissa pattern is NaN, no Inf (float8_e4m3fn,
      float8_e8m0fnu);
    * ``"none"``: every code is finite (float4_e2m1fn, float6_*fn).
    """

    exponent_bits: int
    mantissa_bits: int
    bias: int
    signed: bool = True
    subnormals: bool = True
    inf_nan: str = "ieee"
    ties: str = "even"
    kind = "float"

    def __post_init__(self):
        expected = self.exponent_bits + self.mantissa_bits + int(self.signed)
        if expected != self.bits:
            raise ValueError(f"{self.name}: sign + exponent + mantissa bits must equal bits={self.bits}, "
                             f"not {expected!r}")
        if self.inf_nan not in ("ieee", "fn", "none"):
            raise ValueError(f"{self.name}: inf_nan must be 'ieee', 'fn' or 'none', not {self.inf_nan!r}")
        if self.ties not in ("even", "away"):
            raise ValueError(f"{self.name}: ties must be 'even' or 'away', not {self.ties!r}")

    @property
    def has_nan(self) -> bool:
        return self.inf_nan != "none"

    @property
    def has_inf(self) -> bool:
        return self.inf_nan == "ieee"

    @property
    def _magnitude_codes(self) -> int:
        return 1 << (self.exponent_bits + self.mantissa_bits)

    @cached_property
    def _magnitude_table(self) -> np.ndarray:
        """Value of every magnitude code (sign bit clear)."""
        codes = np.arange(self._magnitude_codes, dtype=np.int64)
        exponent = codes >> self.mantissa_bits
        mantissa = (codes & ((1 << self.mantissa_bits) - 1)).astype(np.float64)
        scale = float(1 << self.mantissa_bits)
        normal = np.ldexp(1.0 + mantissa / scale, (exponent - self.bias).astype(np.int32))
        if self.subnormals:
            subnormal = np.ldexp(mantissa / scale, 1 - self.bias)
            values = np.where(exponent == 0, subnormal, normal)
        else:
            values = normal
        top = (1 << self.exponent_bits) - 1
        if self.inf_nan == "ieee":
            values = np.where(exponent == top, np.where(mantissa == 0, np.inf, np.nan), values)
        elif self.inf_nan == "fn":
            values[-1] = np.nan
        return values

    @cached_property
    def _value_table(self) -> np.ndarray:
        mags = self._magnitude_table
        return np.concatenate([mags, -mags]) if self.signed else mags.copy()

    @cached_property
    def _rounding_levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ascending finite magnitudes plus the virtual overflow level one ULP above max."""
        mags = self._magnitude_table
        finite_codes = np.flatnonzero(np.isfinite(mags))
        levels = mags[finite_codes]
        top_code = int(finite_codes[-1])
        top_exponent = (top_code >> self.mantissa_bits) - self.bias
        overflow_level = levels[-1] + math.ldexp(1.0, top_exponent - self.mantissa_bits)
        levels = np.append(levels, overflow_level)
        codes = np.append(finite_codes, top_code + 1)
        if self.ties == "even":
            tie_up = (codes[1:] % 2) == 0
        else:
            tie_up = np.ones(len(codes) - 1, dtype=bool)
        return levels, codes, tie_up

    @property
    def max_code(self) -> int:
        """Magnitude code of the largest finite value."""
        return int(self._rounding_levels[1][-2])

    @property
    def nan_code(self) -> int | None:
        """Positive quiet-NaN code as produced by ml_dtypes' casts (None if the format has no NaN)."""
        if self.inf_nan == "ieee":
            return ((1 << self.exponent_bits) - 1) << self.mantissa_bits | (1 << (self.mantissa_bits - 1))
        if self.inf_nan == "fn":
            return self._magnitude_codes - 1
        return None

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, 1 - self.bias) if self.subnormals else self.min_subnormal

    def _encode_finite(self, x: np.ndarray, *, saturate: bool) -> np.ndarray:
        levels, codes, tie_up = self._rounding_levels
        negative = np.signbit(x)
        nan = np.isnan(x)
        magnitude = np.abs(np.where(nan, 0.0, x))
        if saturate:
            magnitude = np.minimum(magnitude, levels[-2])
        mag_code = self._nearest_code(magnitude, levels, codes, tie_up)
        overflow = (mag_code > self.max_code) | np.isinf(magnitude)
        if self.inf_nan == "ieee":
            overflow_code = ((1 << self.exponent_bits) - 1) << self.mantissa_bits
        elif self.inf_nan == "fn":
            overflow_code = self.nan_code
        else:
            overflow_code = self.max_code
        mag_code = np.where(overflow, overflow_code, mag_code)
        if self.nan_code is not None:
            mag_code = np.where(nan, self.nan_code, mag_code)
        else:  # ml_dtypes maps NaN to zero of the opposite sign in formats without NaN
            mag_code = np.where(nan, 0, mag_code)
            negative = np.where(nan, ~negative, negative)
        if self.ties == "away" and self.mantissa_bits == 0:
            # ml_dtypes quirk kept for bit-exactness: a float32 subnormal input (below 2**-126) becomes
            # 2**-126 as soon as it exceeds 2**-127 (not only from 1.5 * 2**-127 on).
            tiny = (magnitude > 2.0**-127) & (magnitude < 2.0**-126)
            mag_code = np.where(tiny, 1, mag_code)
        if not self.signed:
            # no sign bit: negatives (and zero when zero is not representable) become NaN
            invalid = negative & (x != 0) | ((x == 0) & (self._magnitude_table[0] != 0))
            return np.where(invalid | nan, self.nan_code, mag_code)
        return np.where(negative, mag_code | self._magnitude_codes, mag_code)


@dataclass(frozen=True, kw_only=True)
class DintFormat(ElementFormat):
    """dINT (Lee et al., EMNLP 2023): a two's-complement integer two of whose codes are the denormal
    special values +alpha and -alpha (``0 < alpha < 1``, in units of the scale).

    ``special`` = the two's-complement integers ``(p, n)`` whose codes mean ``+alpha`` and ``-alpha``:

    * ``(0, -2**(b-1))`` (default, ``dint4``): codes 0 and -8 become ±alpha; there is no exact zero (an
      input of zero encodes to +alpha, negative zero to -alpha);
    * ``(2**(b-1)-1, -(2**(b-1)-1))`` (``dint4z``): exact zero kept, the least-used codes of a symmetric
      absmax grid, ±7, become ±alpha; the grid is ±6 plus ±alpha (-8 stays -8, unused by symmetric scales
      whose limit is :attr:`max` = 6).

    Ties round to the level with the even code (for |x| between alpha and 1 that is alpha).
    """

    alpha: float = 0.5
    special: tuple | None = None
    kind = "dint"

    def __post_init__(self):
        _check_bits(self.name, self.bits, 3, _MAX_TABLE_BITS)
        if not (0 < self.alpha < 1) or not math.isfinite(self.alpha):
            raise ValueError(f"{self.name}: alpha must lie strictly between 0 and 1, not {self.alpha!r}")
        half = 1 << (self.bits - 1)
        p, n = self.special_ints
        if p == n or not all(-half <= v < half for v in (p, n)):
            raise ValueError(f"{self.name}: special must be two distinct integers in {-half}..{half - 1}, "
                             f"not {self.special!r}")

    @property
    def special_ints(self) -> tuple[int, int]:
        """The integers whose codes mean ``+alpha`` and ``-alpha``."""
        return (0, -(1 << (self.bits - 1))) if self.special is None else tuple(int(v) for v in self.special)

    @cached_property
    def _value_table(self) -> np.ndarray:
        codes = np.arange(self.num_codes, dtype=np.int64)
        half = 1 << (self.bits - 1)
        ints = np.where(codes >= half, codes - self.num_codes, codes).astype(np.float64)
        p, n = self.special_ints
        ints[p % self.num_codes] = self.alpha
        ints[n % self.num_codes] = -self.alpha
        return ints

    @cached_property
    def _rounding_levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        table = self._value_table
        order = np.argsort(table, kind="stable")
        codes = order.astype(np.int64)
        tie_up = (codes[1:] % 2) == 0
        return table[order], codes, tie_up

    def _encode_finite(self, x: np.ndarray, *, saturate: bool) -> np.ndarray:
        if np.isnan(x).any():
            raise ValueError(f"x contains NaN; {self.name} has no NaN code, not {float('nan')!r}")
        levels, codes, tie_up = self._rounding_levels
        clipped = np.clip(x, levels[0], levels[-1])
        code = self._nearest_code(clipped, levels, codes, tie_up)
        if 0.0 in self._value_table:
            return code
        p, n = self.special_ints
        return np.where(x == 0, np.where(np.signbit(x), n % self.num_codes, p % self.num_codes), code)


@dataclass(frozen=True, kw_only=True)
class CodebookFormat(ElementFormat):
    """A ``2**bits``-entry value table (e.g. NF4); code i means ``table[i]``.

    Entries are stored as float32 (as bitsandbytes stores NF4), which keeps them dyadic so the exact
    fixed-point view exists.  Encoding picks the nearest entry; ties go to the lower entry.
    """

    table: tuple[float, ...] = field(default=())
    kind = "codebook"

    def __post_init__(self):
        if len(self.table) != 1 << self.bits:
            raise ValueError(f"{self.name}: a {self.bits}-bit codebook needs {1 << self.bits} entries, "
                             f"not {len(self.table)!r}")
        if not np.all(np.isfinite(self.table)):
            raise ValueError(f"{self.name}: codebook entries must be finite")

    @cached_property
    def _value_table(self) -> np.ndarray:
        return np.asarray(self.table, dtype=np.float32).astype(np.float64)

    def _encode_finite(self, x: np.ndarray, *, saturate: bool) -> np.ndarray:
        if np.isnan(x).any():
            raise ValueError(f"x contains NaN; {self.name} has no NaN code, not {float('nan')!r}")
        table = self._value_table
        order = np.argsort(table, kind="stable")
        levels = table[order]
        tie_up = np.zeros(len(levels) - 1, dtype=bool)
        clipped = np.clip(x, levels[0], levels[-1])
        return self._nearest_code(clipped, levels, order.astype(np.int64), tie_up)


def nf4_codebook(offset: float = 0.9677083) -> tuple[float, ...]:
    """NF4 (QLoRA / bitsandbytes ``create_normal_map``): normal-distribution quantiles, exact zero.

    8 positive levels are the standard-normal quantiles at ``linspace(offset, 0.5, 9)[:-1]``, 7 negative
    ones at ``linspace(offset, 0.5, 8)[:-1]`` (mirrored), plus 0; normalised to max 1; ascending.
    """
    normal = statistics.NormalDist()
    positive = [normal.inv_cdf(p) for p in np.linspace(offset, 0.5, 9)[:-1]]
    negative = [-normal.inv_cdf(p) for p in np.linspace(offset, 0.5, 8)[:-1]]
    values = np.array(sorted(positive + [0.0] + negative))
    values = values / np.max(np.abs(values))
    return tuple(float(v) for v in np.float32(values))


def dint_with_alpha(base: str, alpha: float) -> DintFormat:
    """The dINT format ``base`` (``dint4``, ``dint4z`` ...) with special value ``alpha`` instead of its own.

    Named ``{base}_a{alpha}`` (e.g. ``dint4z_a0.375``; ``repr`` of the float) and resolved from the name
    by :func:`get_format`; ``base`` itself when ``alpha`` is its own.
    """
    spec = get_format(base)
    if spec.kind != "dint" or "_a" in spec.name:
        raise ValueError(f"base must be a registered dINT format name such as 'dint4', not {base!r}")
    if float(alpha) == spec.alpha:
        return spec
    return get_format(f"{spec.name}_a{float(alpha)!r}")


def _resolve_dint_alpha(name: str):
    """``dint4z_a0.375``: the registered dINT format with another special value (None if not that form)."""
    base, sep, text = name.partition("_a")
    spec = _REGISTRY.get(base)
    if not sep or spec is None or spec.kind != "dint":
        return None
    try:
        alpha = float(text)
    except ValueError:
        return None
    if f"{alpha!r}" != text or not 0 < alpha < 1 or alpha == spec.alpha:
        return None
    return DintFormat(name=name, bits=spec.bits, alpha=alpha, special=spec.special)


def _check_bits(name: str, bits: int, lo: int, hi: int) -> None:
    if not isinstance(bits, int) or not lo <= bits <= hi:
        raise ValueError(f"{name}: bits must be an integer in {lo}..{hi}, not {bits!r}")


# ---------------------------------------------------------------------- registry
#: Every format by name: element formats (registered below) and block formats (``hwsim.mx`` registers
#: its MX formats when ``hwsim`` is imported; this module never imports ``hwsim.mx``).
_REGISTRY: dict = {}
#: Functions ``name -> format or None`` for families of formats named after their parameters (the fitted
#: quantile codebooks of :mod:`hwsim.quantile`); their answers are cached in ``_RESOLVED``, not listed.
_RESOLVERS: list = []
_RESOLVED: dict = {}


def register_resolver(resolver) -> None:
    """Let ``get_format`` ask ``resolver(name)`` (a format, or None) about names not in the registry."""
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


register_resolver(_resolve_dint_alpha)


def register_format(spec):
    """Add ``spec`` (an :class:`ElementFormat` or a block format such as :class:`hwsim.mx.MXFormat`) to the
    registry under ``spec.name`` (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"format {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _register_builtin() -> None:
    for bits in range(2, 33):
        register_format(IntFormat(name=f"int{bits}", bits=bits, signed=True))
        register_format(IntFormat(name=f"uint{bits}", bits=bits, signed=False))
    for bits in range(3, 9):
        register_format(DintFormat(name=f"dint{bits}", bits=bits))
        top = (1 << (bits - 1)) - 1
        register_format(DintFormat(name=f"dint{bits}z", bits=bits, special=(top, -top)))
    floats = [
        ("float4_e2m1fn", 2, 1, 1, "none"),
        ("float6_e2m3fn", 2, 3, 1, "none"),
        ("float6_e3m2fn", 3, 2, 3, "none"),
        ("float8_e4m3fn", 4, 3, 7, "fn"),
        ("float8_e5m2", 5, 2, 15, "ieee"),
    ]
    for name, e, m, bias, inf_nan in floats:
        register_format(FloatFormat(name=name, bits=1 + e + m, exponent_bits=e, mantissa_bits=m,
                                    bias=bias, inf_nan=inf_nan))
    # FPQ's other 4-bit splits (LLM-FP4, Liu et al. 2023): IEEE-style bias 2^(e-1) - 1, no Inf/NaN codes
    for e, m in ((3, 0), (1, 2)):
        register_format(FloatFormat(name=f"float4_e{e}m{m}", bits=1 + e + m, exponent_bits=e, mantissa_bits=m,
                                    bias=(1 << (e - 1)) - 1, inf_nan="none"))
    register_format(FloatFormat(name="float8_e8m0fnu", bits=8, exponent_bits=8, mantissa_bits=0, bias=127,
                                signed=False, subnormals=False, inf_nan="fn", ties="away"))
    register_format(CodebookFormat(name="nf4", bits=4, table=nf4_codebook()))


_register_builtin()


def get_format(name):
    """Return the registered format spec called ``name`` (a spec passes through unchanged).

    Block formats (``mxfp4``, ``mxfp8_e4m3`` ...) are registered by :mod:`hwsim.mx`; the quantile data
    type ``quantileK`` and its fitted codebooks ``quantileK:<hex>`` are resolved by :mod:`hwsim.quantile`.
    """
    if isinstance(name, ElementFormat) or getattr(name, "kind", None) in ("mx", "quantile"):
        return name
    if not isinstance(name, str):
        raise TypeError(f"format must be a format name or spec, not {name!r}")
    spec = _REGISTRY.get(name) or _RESOLVED.get(name) or _resolve(name)
    if spec is None:
        raise ValueError(f"unknown format name; registered formats are {', '.join(list_formats())}, "
                         f"not {name!r}")
    return spec


def _resolve(name: str):
    for resolver in _RESOLVERS:
        spec = resolver(name)
        if spec is not None:
            _RESOLVED[name] = spec
            return spec
    return None


def list_formats(include_block: bool = True) -> list[str]:
    """Names of all registered formats (element formats first, then block formats)."""
    element = [n for n, spec in _REGISTRY.items() if isinstance(spec, ElementFormat)]
    block = [n for n, spec in _REGISTRY.items() if not isinstance(spec, ElementFormat)]
    return element + block if include_block else element
