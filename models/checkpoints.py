"""Quantized safetensors checkpoints: GPTQ v1, AWQ GEMM, compressed-tensors pack-quantized and
nvfp4-pack-quantized — writers (from float weights) and readers (to codes + scales + zero points).

Layouts (one Linear with ``in_features`` K and ``out_features`` N, ``bits`` b, group size ``gs``):

GPTQ v1 (AutoGPTQ ``QuantLinear``)
    ``qweight`` int32 [K·b/32, N], packed along K, low bits first (element ``k`` of a word at bit
    ``b·(k mod 32/b)``); ``qzeros`` int32 [K/gs, N·b/32] packed along N the same way, storing
    ``zero - 1`` (v1 convention); ``scales`` fp16 [K/gs, N]; ``g_idx`` int32 [K] (= k // gs).
    ``w[k, n] = (q[k, n] - zero[g_idx[k], n]) * scales[g_idx[k], n]``.
AWQ GEMM (AutoAWQ ``WQLinear_GEMM``, 4-bit)
    ``qweight`` int32 [K, N/8] packed along N in nibble order 0,2,4,6,1,3,5,7 (word nibble ``j`` holds
    column ``8i + ORDER[j]``); ``qzeros`` int32 [K/gs, N/8] same packing, zeros stored as is;
    ``scales`` fp16 [K/gs, N].
compressed-tensors ``pack-quantized``
    ``weight_packed`` int32 [N, K·b/32] packed along K (last axis of the torch-layout weight), low
    bits first, values offset by ``2^(b-1)`` (signed int to unsigned); ``weight_scale`` fp16 [N, K/gs];
    ``weight_zero_point`` (asymmetric only) int32 [N/(32/b), K/gs] packed along N; ``weight_shape``
    int64 [2] = (N, K).
compressed-tensors ``nvfp4-pack-quantized``
    ``weight_packed`` uint8 [N, K/2], two FP4 (E2M1) codes per byte, low nibble first;
    ``weight_scale`` float8_e4m3fn [N, K/16]; ``weight_global_scale`` float32 [1];
    ``w = fp4 * weight_scale / weight_global_scale``.

The reference packers OR shifted values into words without masking, so an out-of-range value
(e.g. a GPTQ zero of 0 stored as -1) silently corrupts its neighbours. Here every quantizer clamps
*before* packing and :func:`pack_bits` rejects out-of-range values. Files are read by
:func:`read_safetensors`, the ``safetensors`` library's validated reader (no pickle, F8/BF16 via ml_dtypes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import short_text
from hwsim.limits import check_bytes

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
LAYOUTS = ("gptq", "awq", "pack-quantized", "nvfp4-pack-quantized")


# -- bit packing ------------------------------------------------------------------------------------
def pack_bits(values: np.ndarray, bits: int, axis: int, order=None, dtype=np.int32) -> np.ndarray:
    """Pack unsigned ``bits``-bit values along ``axis`` into words of ``dtype`` (low bits first).

    ``order[j]`` is the element (within a word's group) stored at slot ``j``; default identity. Widths that do
    not divide the word (3 bits) form one little-endian bit stream, ``word_bits`` values per ``bits`` words —
    AutoGPTQ's 3-bit layout (a value may straddle two words).
    """
    v = np.asarray(values, np.int64)
    if np.any(v < 0) or np.any(v >= 1 << bits):
        bad = int(v[(v < 0) | (v >= 1 << bits)].flat[0])
        raise ValueError(f"pack_bits: values must be in [0, {(1 << bits) - 1}] (clamp before packing), not {bad!r}")
    word_bits = np.dtype(dtype).itemsize * 8
    if word_bits % bits:
        return _pack_stream(v, bits, axis, dtype)
    per = word_bits // bits
    v = np.moveaxis(v, axis, -1)
    if v.shape[-1] % per:
        raise ValueError(f"pack_bits: axis length must be a multiple of {per}, not {v.shape[-1]!r}")
    v = v.reshape(*v.shape[:-1], -1, per)
    order = tuple(range(per)) if order is None else tuple(order)
    word = np.zeros(v.shape[:-1], np.uint64)
    for slot, element in enumerate(order):
        word |= v[..., element].astype(np.uint64) << np.uint64(bits * slot)
    out = word.astype(np.uint64 if word_bits == 64 else np.uint32 if word_bits == 32 else np.uint16
                      if word_bits == 16 else np.uint8).view(dtype)
    return np.moveaxis(out, -1, axis)


_UNSIGNED = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _pack_stream(v: np.ndarray, bits: int, axis: int, dtype) -> np.ndarray:
    word_bits = np.dtype(dtype).itemsize * 8
    v = np.moveaxis(v, axis, -1)
    if v.shape[-1] % word_bits:
        raise ValueError(f"pack_bits: axis length must be a multiple of {word_bits} for {bits}-bit packing, "
                         f"not {v.shape[-1]!r}")
    stream = ((v[..., None] >> np.arange(bits)) & 1).reshape(*v.shape[:-1], -1, word_bits)  # bits, LSB first
    words = (stream.astype(np.uint64) << np.arange(word_bits, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    return np.moveaxis(words.astype(_UNSIGNED[word_bits]).view(dtype), -1, axis)


def unpack_bits(words: np.ndarray, bits: int, axis: int, order=None) -> np.ndarray:
    """Inverse of :func:`pack_bits`: unsigned values (int64) with ``axis`` expanded."""
    w = np.asarray(words)
    word_bits = w.dtype.itemsize * 8
    if word_bits % bits:
        u = np.moveaxis(w, axis, -1).view(_UNSIGNED[word_bits]).astype(np.uint64)
        stream = ((u[..., None] >> np.arange(word_bits, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
        stream = stream.reshape(*u.shape[:-1], -1, bits)
        return np.moveaxis((stream << np.arange(bits)).sum(axis=-1), -1, axis)
    per = word_bits // bits
    u = np.moveaxis(w, axis, -1).view(_UNSIGNED[word_bits])
    u = u.astype(np.uint64)
    order = tuple(range(per)) if order is None else tuple(order)
    out = np.zeros((*u.shape, per), np.int64)
    mask = np.uint64((1 << bits) - 1)
    for slot, element in enumerate(order):
        out[..., element] = ((u >> np.uint64(bits * slot)) & mask).astype(np.int64)
    out = out.reshape(*u.shape[:-1], -1)
    return np.moveaxis(out, -1, axis)


# -- safetensors I/O --------------------------------------------------------------------------------
_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32", "I16": "int16",
           "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool"}


def _dtype(code: str, path, name):
    if code in _DTYPES:
        return np.dtype(_DTYPES[code])
    import ml_dtypes

    extra = {"BF16": ml_dtypes.bfloat16, "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}
    if code not in extra:
        raise ValueError(f"{path}: tensor {name!r} has unsupported dtype, not {code!r}")
    return np.dtype(extra[code])


def read_safetensors(path) -> tuple[dict, dict]:
    """Read a safetensors file with the ``safetensors`` library: ``({name: array}, metadata)``.

    The library validates the header (length, JSON, dtypes, shapes) and the data offsets (in bounds,
    contiguous, not overlapping); the file size is checked against the memory budget first. BF16/F8
    tensors become ml_dtypes arrays.
    """
    from safetensors import SafetensorError, deserialize, safe_open

    path = Path(path)
    check_bytes(2 * path.stat().st_size, f"{path}: safetensors file in memory (bytes)")
    try:
        items = deserialize(path.read_bytes())
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
    except SafetensorError as exc:
        raise ValueError(f"{path}: not a valid safetensors file ({short_text(exc)})") from None
    out = {}
    for name, info in items:
        dt = _dtype(info["dtype"], path, name)
        out[name] = np.frombuffer(info["data"], dtype=dt).reshape(info["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path),
              metadata={k: str(v) for k, v in (metadata or {}).items()})


# -- quantized linear -------------------------------------------------------------------------------
@dataclass
class QuantLinear:
    """A quantized linear in the common [K, N] orientation.

    ``codes`` int64 [K, N] (unsigned for asymmetric int; FP4 codes for nvfp4), ``scales`` float [K/gs, N],
    ``zeros`` int64 [K/gs, N] or None, ``group_size``; nvfp4 adds ``global_scale``.
    """

    layout: str
    bits: int
    group_size: int
    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None = None
    global_scale: float | None = None

    def dequantize(self) -> np.ndarray:
        s = np.repeat(np.asarray(self.scales, np.float64), self.group_size, axis=0)
        if self.layout == "nvfp4-pack-quantized":
            from hwsim.formats import get_format

            return get_format("float4_e2m1fn").decode(self.codes) * s / self.global_scale
        z = 0 if self.zeros is None else np.repeat(self.zeros, self.group_size, axis=0)
        return (self.codes - z) * s


def quantize_linear(w: np.ndarray, layout: str, *, bits: int = 4, group_size: int = 128,
                    symmetric: bool = False) -> QuantLinear:
    """RTN-quantize a float weight ``w`` [K, N] for ``layout``; values clamped to the layout's range."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    w = np.asarray(w, np.float64)
    k, n = w.shape
    if layout == "nvfp4-pack-quantized":
        group_size = 16
    if k % group_size:
        raise ValueError(f"in_features must be a multiple of group_size {group_size}, not {k!r}")
    g = w.reshape(k // group_size, group_size, n)
    if layout == "nvfp4-pack-quantized":
        import ml_dtypes

        from hwsim.formats import get_format

        fp4 = get_format("float4_e2m1fn")
        global_scale = float(np.float32(448.0 * 6.0 / max(np.abs(w).max(), 1e-30)))
        s = (np.abs(g).max(axis=1) / 6.0 * global_scale).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)
        s64 = np.where(s.astype(np.float64) > 0, s.astype(np.float64), 1.0)
        codes = fp4.encode(g / (s64[:, None, :] / global_scale), saturate=True).reshape(k, n).astype(np.int64)
        return QuantLinear(layout, 4, 16, codes, s.astype(np.float64), None, global_scale)
    qmax = (1 << bits) - 1
    if symmetric:
        s = np.abs(g).max(axis=1) / ((1 << (bits - 1)) - 1)
        zeros = np.full(s.shape, 1 << (bits - 1), np.int64)
    else:
        lo, hi = np.minimum(g.min(axis=1), 0), np.maximum(g.max(axis=1), 0)
        s = (hi - lo) / qmax
        zeros = np.round(-lo / np.where(s > 0, s, 1)).astype(np.int64)
    s = np.where(s > 0, s, 1.0).astype(np.float16)
    zlo = 1 if layout == "gptq" else 0  # GPTQ v1 stores zero-1: a zero of 0 is not representable
    zeros = np.clip(zeros, zlo, qmax)
    codes = np.clip(np.round(g / s.astype(np.float64)[:, None, :]) + zeros[:, None, :], 0, qmax)
    codes = codes.reshape(k, n).astype(np.int64)
    if layout == "pack-quantized" and symmetric:
        zeros = None
    return QuantLinear(layout, bits, group_size, codes, s.astype(np.float64), zeros)


def pack_linear(q: QuantLinear, prefix: str) -> dict:
    """Tensors of ``q`` in its checkpoint layout, keyed ``prefix + '.qweight'`` etc."""
    k, n = q.codes.shape
    if q.layout == "gptq":
        return {f"{prefix}.qweight": pack_bits(q.codes, q.bits, axis=0),
                f"{prefix}.qzeros": pack_bits(q.zeros - 1, q.bits, axis=1),
                f"{prefix}.scales": q.scales.astype(np.float16),
                f"{prefix}.g_idx": (np.arange(k) // q.group_size).astype(np.int32)}
    if q.layout == "awq":
        if q.bits != 4:
            raise ValueError(f"AWQ GEMM packs 4-bit weights, not {q.bits!r}")
        return {f"{prefix}.qweight": pack_bits(q.codes, 4, axis=1, order=AWQ_ORDER),
                f"{prefix}.qzeros": pack_bits(q.zeros, 4, axis=1, order=AWQ_ORDER),
                f"{prefix}.scales": q.scales.astype(np.float16)}
    if q.layout == "pack-quantized":
        if 32 % q.bits:
            raise ValueError(f"pack-quantized packs {32 // q.bits} {q.bits}-bit values per word with padding, which "
                             f"is not implemented; use 2, 4 or 8 bits, not {q.bits!r}")
        out = {f"{prefix}.weight_packed": pack_bits(q.codes.T, q.bits, axis=1),  # codes already offset
               f"{prefix}.weight_scale": q.scales.T.astype(np.float16),
               f"{prefix}.weight_shape": np.array([n, k], np.int64)}
        if q.zeros is not None:
            out[f"{prefix}.weight_zero_point"] = pack_bits(q.zeros.T, q.bits, axis=0)
        return out
    import ml_dtypes

    return {f"{prefix}.weight_packed": pack_bits(q.codes.T, 4, axis=1, dtype=np.uint8),
            f"{prefix}.weight_scale": q.scales.T.astype(np.float32).astype(ml_dtypes.float8_e4m3fn),
            f"{prefix}.weight_global_scale": np.array([q.global_scale], np.float32)}


def unpack_linear(tensors: dict, prefix: str, layout: str, *, bits: int = 4, symmetric: bool = False
                  ) -> QuantLinear:
    """Read one linear back from checkpoint tensors (inverse of :func:`pack_linear`)."""

    def get(suffix):
        key = f"{prefix}.{suffix}"
        if key not in tensors:
            raise ValueError(f"{layout} checkpoint: tensor {key!r} is missing, not in {sorted(tensors)[:6]!r}")
        return tensors[key]

    if layout == "gptq":
        codes = unpack_bits(get("qweight"), bits, axis=0)
        scales = get("scales").astype(np.float64)
        g_idx = get("g_idx").astype(np.int64)
        gs = int(np.bincount(g_idx).max())
        if not np.array_equal(g_idx, np.arange(len(g_idx)) // gs):
            raise ValueError(f"gptq checkpoint: tensor {prefix + '.g_idx'!r} is act-order (desc_act), "
                             f"which is not supported, not a contiguous grouping")
        zeros = unpack_bits(get("qzeros"), bits, axis=1) + 1
        return QuantLinear(layout, bits, gs, codes, scales, zeros)
    if layout == "awq":
        codes = unpack_bits(get("qweight"), 4, axis=1, order=AWQ_ORDER)
        scales = get("scales").astype(np.float64)
        zeros = unpack_bits(get("qzeros"), 4, axis=1, order=AWQ_ORDER)
        return QuantLinear(layout, 4, codes.shape[0] // scales.shape[0], codes, scales, zeros)
    if layout == "pack-quantized":
        n, k = (int(v) for v in get("weight_shape"))
        codes = unpack_bits(get("weight_packed"), bits, axis=1)[:, :k].T
        scales = get("weight_scale").astype(np.float64).T
        key = f"{prefix}.weight_zero_point"
        zeros = unpack_bits(tensors[key], bits, axis=0)[:n].T if key in tensors else None
        if zeros is None:
            zeros = np.full(scales.shape, 1 << (bits - 1), np.int64)  # symmetric: offset 2^(b-1)
        return QuantLinear(layout, bits, k // scales.shape[0], codes, scales, zeros)
    if layout == "nvfp4-pack-quantized":
        codes = unpack_bits(get("weight_packed"), 4, axis=1).T
        scales = get("weight_scale").astype(np.float64).T
        gsc = float(get("weight_global_scale").reshape(-1)[0])
        return QuantLinear(layout, 4, 16, codes, scales, None, gsc)
    raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")


def write_checkpoint(path, linears: dict, layout: str, *, bits: int = 4, group_size: int = 128,
                     symmetric: bool = False) -> dict:
    """Quantize ``{prefix: float W [K, N]}`` and write them as one safetensors file; returns the
    :class:`QuantLinear` objects written."""
    qs, tensors = {}, {}
    for prefix, w in linears.items():
        q = quantize_linear(w, layout, bits=bits, group_size=group_size, symmetric=symmetric)
        if layout == "pack-quantized" and symmetric:
            q.zeros = None
        qs[prefix] = q
        tensors.update(pack_linear(q, prefix))
    write_safetensors(path, tensors, {"format": "pt", "quant_method": layout, "bits": bits,
                                      "group_size": q.group_size})
    if layout == "pack-quantized" and symmetric:
        for q in qs.values():
            q.zeros = np.full(q.scales.shape, 1 << (bits - 1), np.int64)
    return qs


def read_checkpoint(path, layout: str, *, bits: int = 4) -> dict:
    """Read every quantized linear of a checkpoint file: ``{prefix: QuantLinear}``."""
    tensors, _ = read_safetensors(path)
    key = {"gptq": ".qweight", "awq": ".qweight"}.get(layout, ".weight_packed")
    prefixes = sorted(name[: -len(key)] for name in tensors if name.endswith(key))
    if not prefixes:
        raise ValueError(f"{path}: no '*{key}' tensors for layout {layout!r}, not {sorted(tensors)[:4]!r}")
    return {p: unpack_linear(tensors, p, layout, bits=bits) for p in prefixes}
