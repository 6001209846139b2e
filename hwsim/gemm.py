"""Exact GEMM golden model: ``C = A @ B`` on raw codes of any two registered formats.

The accumulation rule (the one the PE builds)
---------------------------------------------
Every finite operand is an integer ``F`` times ``2**lsb_exponent`` of its format (see
:mod:`hwsim.formats`).  A product of two operands is ``F_a * F_b * 2**(lsb_a + lsb_b)`` and the
accumulator is a signed fixed-point register with LSB weight ``2**(lsb_a + lsb_b)``.  Sums are therefore
exact; for integer formats the register can be limited to ``AccumulatorSpec.bits`` bits with ``wrap``
(two's complement) or ``saturate`` semantics applied after every addition, in the order k = 0 .. K-1.

Why float BLAS is exact here (the bound, guarded in :func:`gemm_ex` and :func:`exact_fixed_matmul`)
-----------------------------------------------------------------------------------------------
Let ``|F_a| <= A`` and ``|F_b| <= B`` (``F`` minus its zero point).  Every product is an integer with
``|p| <= A*B`` and every partial sum over at most K terms satisfies ``|s| <= K*A*B``.  IEEE binary64
(binary32) represents every integer of magnitude up to ``2**53`` (``2**24``) exactly, and a sum or product of
exactly-representable integers whose exact result is representable is computed exactly, *whatever the
summation order, blocking or FMA use of the BLAS*.  So if ``K*A*B <= 2**53`` one float64 GEMM of the integers
``F`` is exact, and if ``K*A*B <= 2**24`` one float32 GEMM is.  The bound is taken from the formats (no pass
over the data): int8 x int8 has ``A = B = 128``, so K up to 1024 runs in float32 and K up to 2**39 in float64;
float8_e4m3fn (``|F| <= 448 * 2**9``) runs in float64 up to K = 2**17.  Where the bound fails (e.g.
float8_e5m2 x float8_e5m2, 33-bit F) the operands are split into limbs ``F = sum_i L_i * 2**(w*i)`` so that
every limb GEMM satisfies the bound; the limb results are carry-normalised into int64 digits, from
which :func:`gemm` forms the correctly rounded float64 with one IEEE addition of two exact halves and
:func:`gemm_fixed` the exact integer (int64, or Python integers beyond 62 bits).

Output
------
``gemm`` returns int64 when both formats are integers (LSB weight 1), otherwise float64 holding
``S * 2**lsb`` — exact whenever the exact value is representable in float64 (always for float4/float6/
float8_e4m3fn/dINT/int pairs at practical K), correctly rounded otherwise (float8_e5m2 x float8_e5m2 can
span more than 53 bits).  :func:`gemm_fixed` returns the exact fixed-point accumulator itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.formats import ElementFormat, get_format

__all__ = [
    "AccumulatorSpec",
    "GemmResult",
    "accumulator_bits",
    "exact_fixed_matmul",
    "exact_fixed_matmul_float",
    "gemm",
    "gemm_ex",
    "gemm_fixed",
    "gemm_fixed_grouped",
    "gemm_mx",
    "mac_product_fixed",
]

_FLOAT64_EXACT_BITS = 53
_FLOAT32_EXACT_BITS = 24
_INT64_SAFE_BITS = 62
_FLOAT32_MIN_EXPONENT = -149  # weight of float32's smallest subnormal


@dataclass(frozen=True, kw_only=True)
class AccumulatorSpec:
    """A signed fixed-point accumulator register.

    Parameters
    ----------
    bits : int
        Register width in bits (sign included), 2..64.
    overflow : {"wrap", "saturate"}
        Two's-complement wrap-around or saturation at ``[-2**(bits-1), 2**(bits-1) - 1]``, applied after
        every addition.
    """

    bits: int = 32
    overflow: str = "wrap"

    def __post_init__(self):
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 64:
            raise ValueError(f"accumulator bits must be an integer in 2..64, not {self.bits!r}")
        if self.overflow not in ("wrap", "saturate"):
            raise ValueError(f"accumulator overflow must be 'wrap' or 'saturate', not {self.overflow!r}")

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def wrap(self, values: np.ndarray) -> np.ndarray:
        """Two's-complement wrap of int64 values into the register range."""
        if self.bits == 64:
            return values
        span = 1 << self.bits
        return ((values - self.lo) & (span - 1)) + self.lo


@dataclass(frozen=True)
class GemmResult:
    """Result of :func:`gemm_ex`.

    Attributes
    ----------
    values : ndarray
        Accumulator values (int64 or float64, see :func:`gemm`).
    overflow_events : int
        Number of additions (over all outputs, in order k = 0..K-1) whose exact result left the
        accumulator range (0 without an accumulator spec).
    lsb_exponent : int
        Weight of the accumulator LSB as a power of two.
    """

    values: np.ndarray
    overflow_events: int
    lsb_exponent: int


def _bits_of(max_abs: int) -> int:
    return int(max_abs).bit_length()


def accumulator_bits(a_format, b_format, k: int) -> int:
    """Signed width of a fixed-point accumulator that sums ``k`` products exactly (no overflow).

    The narrowest two's-complement width holding ``k * p_min`` and ``k * p_max``, where ``p_min``/``p_max``
    are the extreme products of the formats' fixed-point integers (e.g. int8: ``(-128) * (-128) = 2**14``,
    so one product already needs 16 bits).
    """
    a, b = get_format(a_format), get_format(b_format)
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive number of products, not {k!r}")
    corners = [x * y for x in (a.fixed_min, a.fixed_max) for y in (b.fixed_min, b.fixed_max)]
    lo, hi = int(k) * min(corners), int(k) * max(corners)
    return max((-lo - 1).bit_length() if lo < 0 else 0, hi.bit_length()) + 1


def _check_zero_point(fmt: ElementFormat, zero_point, argument: str) -> bool:
    """True when a nonzero zero point applies; zero points exist for integer formats only."""
    if not np.any(zero_point != 0):
        return False
    if fmt.kind != "int":
        raise TypeError(f"{argument} zero point applies to integer formats only, not {fmt.name!r}")
    return True


def _fixed_operand(codes, fmt: ElementFormat, zero_point, argument: str) -> np.ndarray:
    fixed = fmt.to_fixed(fmt.check_codes(codes, argument))
    if _check_zero_point(fmt, zero_point, argument):
        fixed = fixed - np.asarray(zero_point, dtype=np.int64)
    return fixed


def operand_bound(fmt: ElementFormat, zero_point: np.ndarray) -> int:
    """Largest possible ``|F - zero_point|`` over the format's codes (no pass over the data)."""
    zp_lo, zp_hi = int(np.min(zero_point)), int(np.max(zero_point))
    return max(abs(fmt.fixed_min - zp_hi), abs(fmt.fixed_max - zp_lo), abs(fmt.fixed_min - zp_lo),
               abs(fmt.fixed_max - zp_hi))


def value_operand(codes, fmt: ElementFormat, zero_point, argument: str, dtype) -> np.ndarray:
    """Operand values (``value - zero_point``) in ``dtype`` by one cast or table lookup.

    Every value is ``F * 2**lsb_exponent`` exactly, so when the caller's integer bound holds the float
    GEMM of these values is the exact GEMM of the ``F`` scaled by a power of two (no rounding: the
    smallest product weight is far above the dtype's subnormal step).  NaN/Inf codes enter the GEMM as
    NaN/Inf and give exactly the IEEE result in their rows/columns.  Codes are bounds-checked.
    """
    values = _values(np.asarray(codes), fmt, argument, dtype)
    if _check_zero_point(fmt, zero_point, argument):
        values = values - np.asarray(zero_point, dtype=dtype)
    return values


def _values(codes: np.ndarray, fmt: ElementFormat, argument: str, dtype) -> np.ndarray:
    """Values of ``codes`` in ``dtype``: one cast for full-width integer codes (every code valid), else one
    bounds-checked table index (far faster than ``np.take`` on small-integer indices), else ``decode``."""
    values = fmt.cast_values(codes, dtype)
    if values is not None:
        return values
    table = fmt.value_lookup(dtype)
    if table is None or codes.dtype.kind not in "iu":
        return fmt.decode(fmt.check_codes(codes, argument)).astype(dtype)
    if codes.dtype.kind == "i" and codes.size and codes.min() < 0:
        fmt.check_codes(codes, argument)  # negative indices would wrap: raises naming the argument
    try:
        return table[codes]
    except IndexError:
        fmt.check_codes(codes, argument)  # raises the ValueError naming the argument
        raise


def mac_product_fixed(a_codes, a_format, b_codes, b_format, *, a_zero_point=0, b_zero_point=0):
    """Elementwise exact products as fixed-point integers.

    Returns
    -------
    products : ndarray of int64
        ``(F_a - zp_a) * (F_b - zp_b)`` broadcast over the inputs; NaN/Inf operands give 0 (see
        :func:`special_product`).
    lsb_exponent : int
        The products' LSB weight is ``2**lsb_exponent``.
    """
    a, b = get_format(a_format), get_format(b_format)
    fa = _fixed_operand(a_codes, a, a_zero_point, "a_codes")
    fb = _fixed_operand(b_codes, b, b_zero_point, "b_codes")
    return fa * fb, a.lsb_exponent + b.lsb_exponent


def special_product(a_codes, a_format, b_codes, b_format) -> np.ndarray:
    """IEEE value of products involving NaN/Inf operands (float64; NaN for 0 x Inf), else 0."""
    a, b = get_format(a_format), get_format(b_format)
    va, vb = a.decode(a_codes), b.decode(b_codes)
    special = a.is_special(a_codes) | b.is_special(b_codes)
    with np.errstate(invalid="ignore"):
        return np.where(special, va * vb, 0.0)


def _limbs(fixed: np.ndarray, width: int, count: int) -> list[np.ndarray]:
    """Split signed integers into ``count`` limbs of ``width`` bits (lower limbs non-negative)."""
    limbs, rest = [], fixed
    for _ in range(count - 1):
        limbs.append(rest & ((1 << width) - 1))
        rest = rest >> width
    limbs.append(rest)
    return limbs


def _exact_float_dtype(sum_bound: int):
    """float32 / float64 when every partial sum (at most ``sum_bound`` in magnitude) is exact in it."""
    if sum_bound <= 1 << _FLOAT32_EXACT_BITS:
        return np.float32
    if sum_bound <= 1 << _FLOAT64_EXACT_BITS:
        return np.float64
    return None


def exact_fixed_matmul(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Exact integer matrix product of int64 matrices via float BLAS (see the module docstring).

    Returns int64 when the result fits 62 bits, otherwise an object array of Python ints.
    """
    k = fa.shape[-1]
    if k == 0:
        return np.zeros(fa.shape[:-1] + fb.shape[-1:], dtype=np.int64)
    max_a = int(np.max(np.abs(fa), initial=0))
    max_b = int(np.max(np.abs(fb), initial=0))
    ba, bb = _bits_of(max_a), _bits_of(max_b)
    kb = math.ceil(math.log2(k)) if k > 1 else 0
    dtype = _exact_float_dtype(max_a * max_b * k)
    if dtype is not None:
        return np.matmul(fa.astype(dtype), fb.astype(dtype)).astype(np.int64)
    width, digits = _limb_digits(fa, fb, ba, bb, kb)
    if ba + bb + kb <= _INT64_SAFE_BITS:
        return sum(d << (width * i) for i, d in enumerate(digits))
    return sum(d.astype(object) * (1 << (width * i)) for i, d in enumerate(digits))


def _limb_digits(fa, fb, ba: int, bb: int, kb: int) -> tuple[int, list[np.ndarray]]:
    """The exact product ``fa @ fb`` as int64 digits: ``sum_i digits[i] * 2**(width*i)``.

    Operands split into ``width``-bit limbs (lower limbs non-negative) so that every limb GEMM meets the
    float64 bound; limb products of equal weight are summed and carries propagated, leaving every digit
    but the top one in ``[0, 2**width)`` (the top one carries the sign).
    """
    budget = _FLOAT64_EXACT_BITS - kb
    if budget < 2:
        raise ValueError(f"K is too large for exact accumulation, not {fa.shape[-1]!r}")
    width = max(1, budget // 2)
    na, nb = math.ceil(ba / width), math.ceil(bb / width)
    if na + nb > 2 ** (62 - _FLOAT64_EXACT_BITS):
        raise ValueError(f"operands are too wide for exact accumulation, not {ba} x {bb} bits")
    digits = [np.zeros(fa.shape[:-1] + fb.shape[-1:], dtype=np.int64) for _ in range(na + nb - 1)]
    limbs_b = [lb.astype(np.float64) for lb in _limbs(fb, width, nb)]
    for i, la in enumerate(_limbs(fa, width, na)):
        la = la.astype(np.float64)
        for j, lb in enumerate(limbs_b):
            digits[i + j] += np.matmul(la, lb).astype(np.int64)
    mask = (1 << width) - 1
    for i in range(len(digits) - 1):
        digits[i + 1] += digits[i] >> width
        digits[i] &= mask
    return width, digits


def exact_fixed_matmul_float(fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """``fa @ fb`` correctly rounded to float64 (exact whenever representable), without Python ints.

    Beyond the float64 bound the exact sum is ``top * 2**(width*t) + low`` from :func:`_limb_digits`; when
    ``top`` and ``low`` are each exact in float64, their one IEEE addition is the correctly rounded result.
    """
    k = fa.shape[-1]
    max_a = int(np.max(np.abs(fa), initial=0))
    max_b = int(np.max(np.abs(fb), initial=0))
    if k == 0 or _exact_float_dtype(max_a * max_b * k) is not None:
        return exact_fixed_matmul(fa, fb).astype(np.float64)
    ba, bb = _bits_of(max_a), _bits_of(max_b)
    kb = math.ceil(math.log2(k)) if k > 1 else 0
    width, digits = _limb_digits(fa, fb, ba, bb, kb)
    top = len(digits) - 1
    if width * top > _FLOAT64_EXACT_BITS or ba + bb + kb - width * top > _FLOAT64_EXACT_BITS:
        return _to_float(exact_fixed_matmul(fa, fb), 0)
    low = sum(np.ldexp(d.astype(np.float64), width * i) for i, d in enumerate(digits[:-1]))
    return np.ldexp(digits[-1].astype(np.float64), width * top) + low


def _resolve_formats(a_format, b_format):
    a, b = get_format(a_format), get_format(b_format)
    for fmt, argument in ((a, "a_format"), (b, "b_format")):
        if fmt.kind == "mx":
            raise TypeError(f"{argument} is an MX block format; use hwsim.gemm.gemm_mx, not {fmt.name!r}")
    return a, b


def _check_shapes(a_codes, b_codes) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a_codes), np.asarray(b_codes)
    if a.ndim != 2:
        raise ValueError(f"a_codes must be a 2-D M x K array, not shape {a.shape!r}")
    if b.ndim != 2:
        raise ValueError(f"b_codes must be a 2-D K x N array, not shape {b.shape!r}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"b_codes must have K = {a.shape[1]} rows to match a_codes, not {b.shape[0]!r}")
    return a, b


def _zero_point(zp, shape_hint: tuple[int, ...], argument: str) -> np.ndarray:
    zp = np.asarray(zp)
    if zp.dtype.kind not in "iub":
        raise TypeError(f"{argument} must be an integer or integer array, not dtype {zp.dtype.name!r}")
    try:
        np.broadcast_shapes(zp.shape, shape_hint)
    except ValueError:
        raise ValueError(f"{argument} must broadcast to {shape_hint}, not shape {zp.shape!r}") from None
    return zp.astype(np.int64)


def gemm_fixed(a_codes, a_format, b_codes, b_format, *, a_zero_point=0, b_zero_point=0):
    """Exact fixed-point accumulator of ``A @ B`` with no width limit.

    Returns
    -------
    acc : ndarray
        int64 (or object array of Python ints beyond 62 bits), M x N, exact ``sum_k F_a F_b``;
        NaN/Inf operands contribute 0 (see :func:`gemm` for their IEEE result).
    lsb_exponent : int
        The accumulator's LSB weight is ``2**lsb_exponent``.
    """
    a_fmt, b_fmt = _resolve_formats(a_format, b_format)
    a, b = _check_shapes(a_codes, b_codes)
    zpa = _zero_point(a_zero_point, (a.shape[0], 1), "a_zero_point")
    zpb = _zero_point(b_zero_point, (1, b.shape[1]), "b_zero_point")
    fa = _fixed_operand(a, a_fmt, zpa, "a_codes")
    fb = _fixed_operand(b, b_fmt, zpb, "b_codes")
    return exact_fixed_matmul(fa, fb), a_fmt.lsb_exponent + b_fmt.lsb_exponent


def _sequential(fa, fb, rows, cols, acc: AccumulatorSpec) -> tuple[np.ndarray, int]:
    """Accumulate outputs (rows[i], cols[i]) in order k = 0..K-1 with the register's overflow rule."""
    partial = np.zeros(len(rows), dtype=np.int64)
    events = 0
    a_rows, b_cols = fa[rows], fb[:, cols]
    for k in range(fa.shape[1]):
        exact = partial + a_rows[:, k] * b_cols[k]
        out = (exact < acc.lo) | (exact > acc.hi)
        events += int(np.count_nonzero(out))
        partial = acc.wrap(exact) if acc.overflow == "wrap" else np.clip(exact, acc.lo, acc.hi)
    return partial, events


def _apply_accumulator(exact, fa, fb, acc: AccumulatorSpec) -> tuple[np.ndarray, int]:
    """Limit the exact sums to the register; simulate sequentially only outputs that can overflow."""
    bound = np.matmul(np.abs(fa).astype(np.float64), np.abs(fb).astype(np.float64))
    risky = bound >= float(acc.hi) * (1 - 1e-9)
    if risky.any():
        # the register model adds one product to a partial sum held in the register: that must fit int64
        largest = int(np.abs(fa).max(initial=0)) * int(np.abs(fb).max(initial=0))
        if largest + (1 << (acc.bits - 1)) >= 1 << 63:
            raise ValueError(f"accumulator of {acc.bits} bits: a register value plus one product (up to "
                             f"{largest:#x}) exceeds int64 in the sequential model; operands this wide need an "
                             f"accumulator of at most {max(63 - largest.bit_length() - 1, 1)} bits or none, "
                             f"not {acc.bits}")
    if exact.dtype == object:  # sums beyond int64 are all risky: recomputed in the register model below
        exact = np.where(risky, 0, exact).astype(np.int64)
    result = acc.wrap(exact) if acc.overflow == "wrap" else exact.copy()
    if not risky.any():
        return result, 0
    rows, cols = np.nonzero(risky)
    values, events = _sequential(fa, fb, rows, cols, acc)
    result[rows, cols] = values
    return result, events


def _float32_sequential(a_fmt, a, b_fmt, b, zpa, zpb) -> np.ndarray:
    """Products rounded to float32 (exact for <= 8-bit formats), summed in float32 in order k = 0..K-1."""
    va = a_fmt.decode(a) - zpa
    vb = b_fmt.decode(b) - zpb
    total = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(a.shape[1]):
            total = total + (va[:, k:k + 1] * vb[k:k + 1, :]).astype(np.float32)
    return total.astype(np.float64)


def gemm_ex(a_codes, a_format, b_codes, b_format, *, a_zero_point=0, b_zero_point=0,
            accumulator: AccumulatorSpec | None = None, accumulate: str = "exact",
            b_cache: dict | None = None) -> GemmResult:
    """:func:`gemm` returning a :class:`GemmResult` (values, overflow events, LSB exponent).

    ``b_cache``: a dict owned by the caller for a ``B`` (codes and zero point) that does not change, e.g. a
    layer's weights — the fast path keeps B's table-looked-up values in it instead of redoing the lookup.
    """
    a_fmt, b_fmt = _resolve_formats(a_format, b_format)
    a, b = _check_shapes(a_codes, b_codes)
    zpa = _zero_point(a_zero_point, (a.shape[0], 1), "a_zero_point")
    zpb = _zero_point(b_zero_point, (1, b.shape[1]), "b_zero_point")
    lsb = a_fmt.lsb_exponent + b_fmt.lsb_exponent
    if accumulate == "float32":
        _check_zero_point(a_fmt, zpa, "a_codes")
        _check_zero_point(b_fmt, zpb, "b_codes")
        return GemmResult(_float32_sequential(a_fmt, a, b_fmt, b, zpa, zpb), 0, lsb)
    if accumulate != "exact":
        raise ValueError(f"accumulate must be 'exact' or 'float32', not {accumulate!r}")
    integer_result = a_fmt.kind == "int" and b_fmt.kind == "int"
    dtype = _exact_float_dtype(operand_bound(a_fmt, zpa) * operand_bound(b_fmt, zpb) * max(a.shape[1], 1))
    if dtype is np.float32 and lsb < _FLOAT32_MIN_EXPONENT:
        dtype = np.float64  # product weights below float32's subnormal step
    events = 0
    if dtype is not None and accumulator is None:
        # fast path: exact BLAS GEMMs on table-looked-up values (bound in the module docstring)
        chunk = _float32_chunk(a_fmt, zpa, b_fmt, zpb, a.shape[1]) if dtype is np.float64 else None
        if chunk is not None and lsb >= _FLOAT32_MIN_EXPONENT:
            dtype = np.float32
        va = value_operand(a, a_fmt, zpa, "a_codes", dtype)
        vb = _cached_operand(b_cache, b, b_fmt, zpb, dtype)
        product = np.matmul(va, vb) if dtype is not np.float32 or chunk is None else _chunked_matmul(va, vb, chunk)
        if integer_result:
            return GemmResult(product.astype(np.int64), 0, lsb)
        return GemmResult(product.astype(np.float64, copy=False), 0, lsb)
    else:
        fa = _fixed_operand(a, a_fmt, zpa, "a_codes")
        fb = _fixed_operand(b, b_fmt, zpb, "b_codes")
        if accumulator is None and not integer_result:  # wide float formats (e.g. float8_e5m2 pairs)
            values = np.ldexp(exact_fixed_matmul_float(fa, fb), lsb)
            return GemmResult(_with_specials(values, a_fmt, a, b_fmt, b), 0, lsb)
        exact = exact_fixed_matmul(fa, fb)
        if accumulator is not None:
            exact, events = _apply_accumulator(exact, fa, fb, accumulator)
        if integer_result and exact.dtype != object:
            return GemmResult(exact, events, lsb)
        return GemmResult(_with_specials(_to_float(exact, lsb), a_fmt, a, b_fmt, b), events, lsb)


def _float32_chunk(a_fmt, zpa, b_fmt, zpb, k: int) -> int | None:
    """Largest K-chunk whose float32 GEMM is exact when the whole K needs float64, if worth splitting.

    Each chunk's float32 GEMM is exact (``chunk * A * B <= 2^24``) and the chunk results, exact integers
    whose total is below ``2^53``, add exactly in float64: two or three float32 GEMMs cost less than one
    float64 GEMM (e.g. int8 x int8 at K = 1536: two chunks of 1024 and 512).
    """
    chunk = (1 << _FLOAT32_EXACT_BITS) // max(operand_bound(a_fmt, zpa) * operand_bound(b_fmt, zpb), 1)
    return chunk if chunk >= 256 and -(-k // chunk) <= 3 else None


def _chunked_matmul(va: np.ndarray, vb: np.ndarray, chunk: int) -> np.ndarray:
    """``va @ vb`` as float32 GEMMs over K-chunks, summed in float64 (exact: :func:`_float32_chunk`)."""
    total = np.matmul(va[:, :chunk], vb[:chunk]).astype(np.float64)
    for k0 in range(chunk, va.shape[1], chunk):
        total += np.matmul(va[:, k0:k0 + chunk], vb[k0:k0 + chunk])
    return total


def _cached_operand(cache: dict | None, codes, fmt, zero_point, dtype) -> np.ndarray:
    """B's operand values, from ``cache`` when the caller keeps one for this B."""
    if cache is None:
        return value_operand(codes, fmt, zero_point, "b_codes", dtype)
    key = ("gemm_b_values", np.dtype(dtype).name)
    if key not in cache:
        cache[key] = value_operand(codes, fmt, zero_point, "b_codes", dtype)
    return cache[key]


def _with_specials(values, a_fmt, a, b_fmt, b) -> np.ndarray:
    """Put the IEEE result into outputs whose operands hold NaN/Inf (exact paths map them to 0)."""
    special_a, special_b = a_fmt.is_special(a), b_fmt.is_special(b)
    if special_a.any() or special_b.any():
        values = _merge_specials(values, a_fmt.decode(a), b_fmt.decode(b), special_a, special_b)
    return values


def _to_float(exact: np.ndarray, lsb: int) -> np.ndarray:
    if exact.dtype == object:  # Python ints: float() rounds correctly (half to even)
        exact = np.vectorize(float, otypes=[np.float64])(exact) if exact.size else exact.astype(np.float64)
    return np.ldexp(exact.astype(np.float64), lsb)


def _merge_specials(values, va, vb, special_a, special_b) -> np.ndarray:
    """IEEE results for outputs whose row of A or column of B holds NaN/Inf.

    Such an output is NaN or ±Inf whatever the summation order, so a float64 GEMM of the decoded
    values gives it exactly."""
    rows = special_a.any(axis=1)
    cols = special_b.any(axis=0)
    values = values.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        if rows.any():
            values[rows, :] = np.matmul(va[rows], vb)
        if cols.any():
            values[:, cols] = np.matmul(va, vb[:, cols])
    return values


def gemm(a_codes, a_format, b_codes, b_format, *, a_zero_point=0, b_zero_point=0,
         accumulator: AccumulatorSpec | None = None, accumulate: str = "exact") -> np.ndarray:
    """Exact accumulator values of ``A @ B`` before requantization.

    Parameters
    ----------
    a_codes, b_codes : array_like of int
        Raw codes, A is M x K, B is K x N.
    a_format, b_format : str or format spec
        Registered element format names (``"int8"``, ``"dint4"``, ``"float8_e4m3fn"`` ...).
    a_zero_point, b_zero_point : int or array of int
        Integer zero points (integer formats only), per tensor or per row of A (shape M x 1) /
        per column of B (shape 1 x N); ``value = integer - zero_point``.
    accumulator : AccumulatorSpec, optional
        Limit the fixed-point accumulator width with wrap or saturate semantics (default: unbounded).
    accumulate : {"exact", "float32"}
        ``"exact"`` fixed-point accumulation; ``"float32"`` sums the products sequentially in float32
        (k = 0..K-1), a documented inexact alternative.

    Returns
    -------
    ndarray
        int64 for integer x integer formats, else float64 (exact value, NaN/Inf per IEEE where
        operands are NaN/Inf).  Use :func:`gemm_ex` for overflow counts.
    """
    return gemm_ex(a_codes, a_format, b_codes, b_format, a_zero_point=a_zero_point,
                   b_zero_point=b_zero_point, accumulator=accumulator, accumulate=accumulate).values


def gemm_mx(a_codes, a_scales, a_format, b_codes, b_scales, b_format) -> np.ndarray:
    """``A @ B`` for MX block formats (blocks along K: A's rows, B's columns).

    Each block's 32-element dot product is exact (fixed point, as :func:`gemm`); it is scaled by the two
    E8M0 block scales (exact powers of two) and the block results are summed in float64 in block order —
    the OCP MX v1.0 spec leaves the cross-block accumulation precision to the implementation.

    Parameters
    ----------
    a_codes : M x K element codes;  a_scales : M x ceil(K / 32) E8M0 scale codes
    b_codes : K x N element codes;  b_scales : ceil(K / 32) x N E8M0 scale codes
    a_format, b_format : MX format names (``"mxfp8_e4m3"`` ...)
    """
    a_mx, b_mx = get_format(a_format), get_format(b_format)
    for fmt, argument in ((a_mx, "a_format"), (b_mx, "b_format")):
        if fmt.kind != "mx":
            raise TypeError(f"{argument} must be an MX block format, not {fmt.name!r}")
    a, b = _check_shapes(a_codes, b_codes)
    block = a_mx.block_size
    if b_mx.block_size != block:
        raise ValueError(f"b_format block size must equal {block}, not {b_mx.block_size!r}")
    n_blocks = -(-a.shape[1] // block)
    sa, sb = np.asarray(a_scales, dtype=np.int64), np.asarray(b_scales, dtype=np.int64)
    if sa.shape != (a.shape[0], n_blocks):
        raise ValueError(f"a_scales must have shape {(a.shape[0], n_blocks)}, not {sa.shape!r}")
    if sb.shape != (n_blocks, b.shape[1]):
        raise ValueError(f"b_scales must have shape {(n_blocks, b.shape[1])}, not {sb.shape!r}")
    fa = a_mx.element.to_fixed(a_mx.element.check_codes(a, "a_codes"))
    fb = b_mx.element.to_fixed(b_mx.element.check_codes(b, "b_codes"))
    lsb = (a_mx.element.lsb_exponent + a_mx.element_exponent + b_mx.element.lsb_exponent
           + b_mx.element_exponent)
    total = np.zeros((a.shape[0], b.shape[1]), dtype=np.float64)
    nan = (sa == 0xFF)[:, :, None] | (sb == 0xFF)[None, :, :]
    for j in range(n_blocks):
        cols = slice(j * block, (j + 1) * block)
        partial = exact_fixed_matmul(fa[:, cols], fb[cols, :]).astype(np.float64)
        exponent = (sa[:, j:j + 1] + sb[j:j + 1, :] - 254 + lsb).astype(np.int32)
        total += np.ldexp(partial, exponent)
    total = np.where(nan.any(axis=1), np.nan, total)
    special_a, special_b = a_mx.element.is_special(a), b_mx.element.is_special(b)
    if special_a.any() or special_b.any():  # element NaN/Inf keep their IEEE meaning (OCP MX v1.0 sec. 6)
        va = _mx_values(a_mx, a, sa, axis=1)
        vb = _mx_values(b_mx, b, sb, axis=0)
        total = _merge_specials(total, va, vb, special_a, special_b)
    return total


def _mx_values(fmt, codes: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    """Element values times their block scale (float64), blocks along ``axis``."""
    from hwsim.mx import MXTensor

    return fmt.dequantize(MXTensor(codes=codes, scale_codes=scales, format=fmt, axis=axis))


def gemm_fixed_grouped(a_codes, a_format, b_codes, b_format, group_size: int, *, a_zero_point=0,
                       b_zero_point=0, groups: slice | None = None, as_values: bool = False):
    """Exact fixed-point accumulators of ``A @ B`` per group of ``group_size`` along K, in one batched GEMM.

    Parameters
    ----------
    a_codes : M x K codes; b_codes : K x N codes
    group_size : int
        Elements of K per group (``K % group_size == 0``).
    a_zero_point : int or M x 1 ints
    b_zero_point : int, 1 x N, or G x N ints (one zero point per group and column)
    groups : slice, optional
        Only these groups (bounds memory: the result holds ``len(groups) * M * N`` int64).
    as_values : bool
        Return the exact values ``acc · 2^lsb`` as floats (float32 or float64, whichever the exact BLAS path
        used; float64 otherwise) instead of int64 accumulators — saves a conversion pass for epilogues.

    Returns
    -------
    acc : int64 ndarray, G x M x N
        ``acc[g] = sum_{k in group g} (F_a - zp_a)(F_b - zp_b)``, exact.
    lsb_exponent : int
    """
    a_fmt, b_fmt = _resolve_formats(a_format, b_format)
    a, b = _check_shapes(a_codes, b_codes)
    if not isinstance(group_size, int) or group_size < 1 or a.shape[1] % group_size:
        raise ValueError(f"group_size must be a positive divisor of K = {a.shape[1]}, not {group_size!r}")
    n_groups = a.shape[1] // group_size
    sel = range(n_groups)[groups] if groups is not None else range(n_groups)
    k0, k1 = sel.start * group_size, sel.stop * group_size
    zpa = _zero_point(a_zero_point, (a.shape[0], 1), "a_zero_point")
    zpb = np.asarray(b_zero_point)
    if np.any(zpb != 0) and b_fmt.kind != "int":
        raise TypeError(f"b zero point applies to integer formats only, not {b_fmt.name!r}")
    if zpb.ndim == 2 and zpb.shape[0] == n_groups:
        zpb = np.repeat(_zero_point(zpb, (n_groups, b.shape[1]), "b_zero_point")[sel.start:sel.stop],
                        group_size, axis=0)
    else:
        zpb = _zero_point(zpb, (1, b.shape[1]), "b_zero_point")
    g, lsb = len(sel), a_fmt.lsb_exponent + b_fmt.lsb_exponent
    dtype = _exact_float_dtype(operand_bound(a_fmt, zpa) * operand_bound(b_fmt, zpb) * group_size)
    if dtype is np.float32 and lsb < _FLOAT32_MIN_EXPONENT:
        dtype = np.float64
    specials = a_fmt.is_special(a[:, k0:k1]).any() or b_fmt.is_special(b[k0:k1]).any()
    if dtype is not None and not specials:  # fast path: exact batched BLAS on table values, as gemm() does
        va = value_operand(a[:, k0:k1], a_fmt, zpa, "a_codes", dtype)
        vb = value_operand(b[k0:k1], b_fmt, zpb, "b_codes", dtype)
        values = np.matmul(va.reshape(a.shape[0], g, group_size).transpose(1, 0, 2),
                           vb.reshape(g, group_size, b.shape[1]))
        if as_values:
            return values, lsb
        return np.ldexp(values.astype(np.float64), -lsb).astype(np.int64), lsb
    fa = _fixed_operand(a[:, k0:k1], a_fmt, zpa, "a_codes")
    fb = _fixed_operand(b[k0:k1], b_fmt, zpb, "b_codes")
    fa3 = fa.reshape(a.shape[0], g, group_size).transpose(1, 0, 2)
    fb3 = fb.reshape(g, group_size, b.shape[1])
    acc = exact_fixed_matmul(fa3, fb3)
    if acc.dtype == object:
        raise ValueError(f"group accumulators exceed 62 bits for {a_fmt.name} x {b_fmt.name}, "
                         f"not group_size {group_size!r}")
    if as_values:
        return np.ldexp(acc.astype(np.float64), lsb), lsb
    return acc, a_fmt.lsb_exponent + b_fmt.lsb_exponent
