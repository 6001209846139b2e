"""Float reference numerics of every op kind, and the graph walker shared with the integer executor.

:func:`run_graph` walks the ops in order and calls ``backend.<kind>(op, *inputs)``: a backend's methods
are its kernel registry. :class:`FloatBackend` is the numpy reference forward (float32 storage, float64
reductions where they matter). The bit-exact backend is :class:`hwsim.int_executor.IntegerExecutor`.
The float kernels (:func:`gelu`, :func:`softmax`, :func:`rope`, :func:`silu`, :func:`embed`) are also what
the integer executor runs for the ops it still computes in float (named as such in its per-op table).
Reshapes use ONNX's convention (``0`` copies the input dimension, ``-1`` is inferred), so one graph
runs any batch and sequence length.
"""

from __future__ import annotations

import math

import numpy as np

# Cephes ``ndtr.c`` (S. L. Moshier, public domain) rational approximations, the ones scipy.special.erf
# compiles: erf on |x| <= 1 (T/U), erfc on 1 < |x| < 8 (P/Q) and |x| >= 8 (R/S); coefficients high first.
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
_ERFC_R = (5.64189583547755073984e-1, 1.27536670759978104416e0, 5.01905042251180477414e0,
           6.16021097993053585195e0, 7.40974269950448939160e0, 2.97886665372100240670e0)
_ERFC_S = (1.0, 2.26052863220117276590e0, 9.39603524938001434673e0, 1.20489539808096656605e1,
           1.70814450747565897222e1, 9.60896809063285878198e0, 3.36907645100081516050e0)


_ERF_CHUNK = 16384


def _poly(x: np.ndarray, coefficients) -> np.ndarray:
    """Horner evaluation, highest coefficient first (in place on one accumulator)."""
    acc = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        acc *= x
        acc += c
    return acc


def _erfc_tail(a: np.ndarray) -> np.ndarray:
    """erfc(a) for 1 < a < 27 (a float64 1-D array)."""
    ratio = np.empty_like(a)
    mid = a < 8.0
    am, at = a[mid], a[~mid]
    ratio[mid] = _poly(am, _ERFC_P) / _poly(am, _ERFC_Q)
    ratio[~mid] = _poly(at, _ERFC_R) / _poly(at, _ERFC_S)
    return np.exp(-a * a) * ratio


def _erf_flat(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    small = a <= 1.0
    if small.all():
        z = x * x
        return x * _poly(z, _ERF_T) / _poly(z, _ERF_U)
    out = np.sign(x)  # +-1 beyond 27 (erfc underflows), NaN for NaN
    xs = x[small]
    zs = xs * xs
    out[small] = xs * _poly(zs, _ERF_T) / _poly(zs, _ERF_U)
    tail = ~small & (a < 27.0)
    out[tail] = np.copysign(1.0 - _erfc_tail(a[tail]), x[tail])
    return out


def erf(x: np.ndarray) -> np.ndarray:
    """Error function, elementwise, float64 (vectorised Cephes rational approximations).

    Agrees with libm's ``math.erf`` to within 3 ulp (measured on 2e6 points in [-7, 7]; see
    ``tests/models/test_minilm_float.py``); erf(+-inf) = +-1 and NaN propagates. Evaluated in chunks of
    :data:`_ERF_CHUNK` elements so the polynomial temporaries stay in cache (2.5x faster than
    ``np.frompyfunc(math.erf)`` on GELU-sized inputs).
    """
    x = np.asarray(x, np.float64)
    flat = x.ravel()
    out = np.empty_like(flat)
    for i in range(0, flat.size, _ERF_CHUNK):
        out[i:i + _ERF_CHUNK] = _erf_flat(flat[i:i + _ERF_CHUNK])
    return out.reshape(x.shape)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU ``0.5 x (1 + erf(x / sqrt 2))`` in float64."""
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def mask_bias(mask: np.ndarray, ndim: int) -> np.ndarray:
    """Additive attention bias from a (batch, seq) 0/1 mask: 0 where kept, -inf where padded."""
    bias = np.where(np.asarray(mask) > 0, 0.0, -np.inf)
    return bias.reshape(bias.shape[0], *([1] * (ndim - 2)), bias.shape[1])


def causal_keep(q: int, k: int, query_period: int | None = None) -> np.ndarray:
    """``(q, k)`` bool: key ``j`` visible to query row ``i`` (``j <= pos(i)``). Rows are at positions
    ``i mod P + (k - P)`` with ``P = query_period or q`` (the last ``P`` of ``k`` positions; stacked
    query groups repeat them)."""
    period = query_period or q
    pos = np.arange(q) % period + (k - period)
    return np.arange(k)[None, :] <= pos[:, None]


def softmax(x: np.ndarray, mask=None, *, causal: bool = False, query_period: int | None = None) -> np.ndarray:
    """Softmax over the last axis (float64) with an optional key mask and causal mask.

    ``query_period``: rows are stacked query groups (grouped-query attention); row ``r`` is at position
    ``r mod query_period``."""
    x = np.asarray(x, np.float64)
    if mask is not None:
        x = x + mask_bias(mask, x.ndim)
    if causal:
        x = np.where(causal_keep(x.shape[-2], x.shape[-1], query_period), x, -np.inf)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def rope(x: np.ndarray, *, base: float, positions: np.ndarray | None = None) -> np.ndarray:
    """Rotary embedding on (..., seq, head_dim), rotating ADJACENT pairs (2i, 2i+1) (GGUF/llama.cpp
    layout: the converter permutes q/k weights so the interleaved rotation is the original model's)."""
    x = np.asarray(x, np.float64)
    seq, dim = x.shape[-2], x.shape[-1]
    pos = np.arange(seq) if positions is None else np.asarray(positions)
    inv = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(ang), np.sin(ang)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU ``x / (1 + exp(-x))`` in float64."""
    x = np.asarray(x, np.float64)
    return x / (1.0 + np.exp(-x))


def reshape_dims(shape: tuple, target) -> tuple[int, ...]:
    """ONNX ``Reshape`` target: ``0`` copies the input dimension at that index, ``-1`` is inferred."""
    return tuple(shape[i] if d == 0 else int(d) for i, d in enumerate(target))


def query_period(op, scores_shape) -> int | None:
    """Rows per query group of a grouped-query score tensor (``attrs['query_groups']``), else None."""
    groups = op.attrs.get("query_groups")
    return scores_shape[-2] // int(groups) if groups else None


def ori_input(op, x) -> np.ndarray:
    """A norm's input in float64, times its per-channel ``ori_lambda`` (PFPQuant ORI-LN: the graph feeds the
    norm ``x / λ``; the norm unit multiplies λ back inside the statistics and γ)."""
    x = np.asarray(x, np.float64)
    lam = op.attrs.get("ori_lambda")
    return x if lam is None else x * np.asarray(lam, np.float64)


def embed(op, ids, word, pos=None, types=None) -> np.ndarray:
    """Word (+ position + token-type 0) embeddings of ``ids`` in float64."""
    x = (word.T if op.attrs.get("table_transposed") else word)[ids].astype(np.float64)
    if pos is not None:
        x = x + pos[np.arange(ids.shape[-1])]
    if types is not None:
        x = x + types[0]
    return x


class FloatBackend:
    """numpy reference numerics; activations stored as float32 like the original models."""

    dtype = np.float32

    def _out(self, x):
        return np.asarray(x, self.dtype)

    def embedding(self, op, ids, word, pos=None, types=None):
        return self._out(embed(op, ids, word, pos, types))

    def layernorm(self, op, x, gamma, beta):
        x = ori_input(op, x)
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return self._out((x - mu) / np.sqrt(var + op.attrs["eps"]) * gamma + beta)

    def rmsnorm(self, op, x, gamma, beta=None):
        x = ori_input(op, x)
        y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + op.attrs["eps"]) * gamma
        return self._out(y if beta is None else y + beta)

    def linear(self, op, x, w, b=None):
        x = np.asarray(x, np.float32)
        y = (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[-1])
        return self._out(y if b is None else y + b)

    def matmul(self, op, a, b):
        y = np.matmul(np.asarray(a, np.float32), np.asarray(b, np.float32))
        scale = op.attrs.get("scale")
        return self._out(y if scale is None else y * np.float32(scale))

    def softmax(self, op, x, mask=None):
        return self._out(softmax(x, mask, causal=op.attrs.get("causal", False),
                                 query_period=query_period(op, np.shape(x))))

    def gelu(self, op, x):
        return self._out(gelu(x))

    def silu(self, op, x):
        return self._out(silu(x))

    def swiglu(self, op, gate, up):
        return self._out(silu(gate) * up)

    def add(self, op, a, b):
        return self._out(np.asarray(a, np.float64) + b)

    def mul(self, op, a, b):
        return self._out(np.asarray(a, np.float64) * b)

    def rope(self, op, x):
        return self._out(rope(x, base=op.attrs["base"]))

    def requant(self, op, x):
        """Requant, quantize and dequantize are identities in float."""
        return x

    quantize = dequantize = requant

    def reshape(self, op, x):
        return np.reshape(x, reshape_dims(np.shape(x), op.attrs["shape"]))

    def transpose(self, op, x):
        return np.transpose(x, op.attrs["perm"])

    def select(self, op, x):
        return np.take(np.asarray(x), np.asarray(op.attrs["index"]), axis=-1)

    def hadamard(self, op, x):
        from hwsim.hadamard import transform

        return self._out(transform(x))

    def mean_pool(self, op, x, mask):
        m = np.asarray(mask, np.float64)[..., None]
        return self._out((np.asarray(x, np.float64) * m).sum(axis=-2) / np.maximum(m.sum(axis=-2), 1e-9))


def run_graph(graph, feeds: dict, backend, *, observer=None, keep: bool = False) -> dict:
    """Execute ``graph`` on ``feeds`` ({input name: array}); return {output name: value}.

    ``observer(op, value)`` is called after each op (calibration). ``keep=True`` returns every
    intermediate value instead of only the graph outputs.
    """
    missing = [name for name in graph.inputs if name not in feeds]
    if missing:
        raise ValueError(f"graph {graph.name!r}: missing input(s) {missing}, not {sorted(feeds)!r}")
    env = dict(graph.weights)
    env.update(feeds)
    last_use: dict[str, int] = {}
    for index, op in enumerate(graph.ops):
        for t in op.inputs:
            last_use[t] = index
    for index, op in enumerate(graph.ops):
        fn = getattr(backend, op.kind, None)
        if fn is None:
            raise ValueError(f"graph {graph.name!r}: op {op.name!r} of kind {op.kind!r} is not supported by "
                             f"{type(backend).__name__}")
        value = fn(op, *[env[t] for t in op.inputs])
        env[op.outputs[0]] = value
        if observer is not None:
            observer(op, value)
        if not keep:
            for t in op.inputs:
                if last_use.get(t) == index and t not in graph.weights and t not in graph.outputs \
                        and t not in feeds:
                    env.pop(t, None)
    if keep:
        return env
    return {name: env[name] for name in graph.outputs}
