"""Run a :class:`hwsim.graph.Graph` with a numerics backend.

:func:`run_graph` walks the ops in order and calls ``backend.<kind>(op, *inputs)``. The
:class:`FloatBackend` is the numpy reference forward (float32 storage, float64 reductions where
they matter). The quantized, bit-exact backend lives in :mod:`hwsim.models.qexec`.
"""

from __future__ import annotations

import math

import numpy as np

_ERF = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """Exact (libm) error function, elementwise, float64."""
    return _ERF(np.asarray(x, np.float64)).astype(np.float64)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU ``0.5 x (1 + erf(x / sqrt 2))`` in float64."""
    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def mask_bias(mask: np.ndarray, ndim: int) -> np.ndarray:
    """Additive attention bias from a (batch, seq) 0/1 mask: 0 where kept, -inf where padded."""
    bias = np.where(np.asarray(mask) > 0, 0.0, -np.inf)
    return bias.reshape(bias.shape[0], *([1] * (ndim - 2)), bias.shape[1])


def softmax(x: np.ndarray, mask=None, *, causal: bool = False, query_period: int | None = None) -> np.ndarray:
    """Softmax over the last axis (float64) with an optional key mask and causal mask.

    ``query_period``: rows are stacked query groups (grouped-query attention); row ``r`` is at position
    ``r mod query_period``."""
    x = np.asarray(x, np.float64)
    if mask is not None:
        x = x + mask_bias(mask, x.ndim)
    if causal:
        q, k = x.shape[-2], x.shape[-1]
        pos = np.arange(q) % query_period if query_period else np.arange(q) + (k - q)
        x = np.where(np.arange(k)[None, :] <= pos[:, None], x, -np.inf)
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
        x = np.asarray(x, np.float64)
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return self._out((x - mu) / np.sqrt(var + op.attrs["eps"]) * gamma + beta)

    def rmsnorm(self, op, x, gamma):
        x = np.asarray(x, np.float64)
        return self._out(x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + op.attrs["eps"]) * gamma)

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
                                 query_period=op.attrs.get("query_period")))

    def gelu(self, op, x):
        return self._out(gelu(x))

    def silu(self, op, x):
        x = np.asarray(x, np.float64)
        return self._out(x / (1.0 + np.exp(-x)))

    def swiglu(self, op, gate, up):
        g = np.asarray(gate, np.float64)
        return self._out(g / (1.0 + np.exp(-g)) * up)

    def add(self, op, a, b):
        return self._out(np.asarray(a, np.float64) + b)

    def mul(self, op, a, b):
        return self._out(np.asarray(a, np.float64) * b)

    def rope(self, op, x):
        return self._out(rope(x, base=op.attrs["base"]))

    def reshape(self, op, x):
        return np.reshape(x, op.attrs["shape"])

    def transpose(self, op, x):
        return np.transpose(x, op.attrs["perm"])

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
        if op.kind == "reshape" and "shape" not in op.attrs:
            op.attrs["shape"] = graph.tensors[op.outputs[0]].shape
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


def run_model(model: str = "minilm", arch=None, formats=("w8a8",), sentences: int = 4, out_dir=None,
              **options) -> dict:
    """Float + bit-exact quantized run with cycles/energy; see :func:`hwsim.models.run.run_model`."""
    from hwsim.models.run import run_model as _run_model

    return _run_model(model, arch, formats, sentences, out_dir, **options)
