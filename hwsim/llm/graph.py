"""Prefill/decode graphs of a transformer from its :class:`~hwsim.llm.config.LLMConfig` (shapes only).

``prefill``: ``batch`` sequences of ``seq_len`` new tokens, no cache before (``T = seq_len``).
``decode``: one new token for each of ``batch`` sequences whose KV cache already holds ``kv_len``
tokens; the new token's keys/values are appended first, so attention spans ``T = kv_len + 1``.
An encoder (BERT) has only ``prefill`` (the full-sequence pass) and no KV cache.

Per layer (decoder, pre-norm; ``H`` hidden, ``S`` new tokens, ``h``/``g`` query/KV heads, ``d`` head dim,
``r = h/g`` query heads per KV head)::

    norm -> q/k/v linear (H x h*d, H x g*d) -> rope(q), rope(k) (RoPE families)
    kv_write k, v -> cache [B, g, T, d] in ``kv_format``           (decoders only)
    scores = matmul(q [B, g, r*S, d], k_cache^T [B, g, d, T])      one product per (sequence, KV group):
    softmax over T; context = matmul(p, v_cache [B, g, T, d])      GQA shares each cached K/V by r heads
    o linear (h*d x H) -> add residual -> norm -> MLP (gate/up + swiglu, or fc1 + gelu/relu) -> down/fc2 -> add

then the final norm and ``lm_head`` on the last position of each sequence (the next token's logits;
for prefill this is the first generated token). Every weight and bias is a weight tensor (biases as the
``linear`` op's third input); a tied ``lm_head`` is a zero-cost view of the embedding table. The attention
is the plain (unfused) form: the full ``S x T`` score matrix is computed. A decoder's softmax carries
``causal=True`` and ``query_groups=r`` (query row ``i`` is at position ``i mod S + T - S``): the
executors mask it, and the fused FlashAttention pricing skips the kv blocks above the diagonal
(:mod:`hwsim.perf.flash_attention`); unfused, every score is still computed.
KV-cache tensors carry ``QuantSpec(kv_format)`` when a format is given; every other tensor has no
QuantSpec and is priced in the architecture's PE formats.
"""

from __future__ import annotations

from hwsim.graph import Graph, QuantSpec
from hwsim.llm.config import LLMConfig

PHASES = ("prefill", "decode")


def phase_tokens(cfg: LLMConfig, phase: str, seq_len: int, kv_len: int) -> tuple[int, int]:
    """``(S, T)``: new tokens per sequence and the attention span of ``phase`` (module docstring)."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
    if phase == "decode":
        if not cfg.decoder:
            raise ValueError(f"{cfg.name}: an encoder ({cfg.family}) has no decode phase; use phase 'prefill'")
        if kv_len < 0:
            raise ValueError(f"kv_len must be >= 0, not {kv_len!r}")
        return 1, kv_len + 1
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, not {seq_len!r}")
    return seq_len, seq_len


class _Builder:
    """Adds named tensors and ops to one graph; the helpers return the output tensor's name."""

    def __init__(self, graph: Graph, kv_quant: QuantSpec | None):
        self.g = graph
        self.kv_quant = kv_quant

    def t(self, name: str, shape, *, weight: bool = False, quant: QuantSpec | None = None) -> str:
        self.g.add_tensor(name, shape, is_weight=weight, quant=quant)
        return name

    def op(self, kind: str, name: str, inputs, shape, **attrs) -> str:
        out = self.t(name, shape)
        self.g.add_op(name, kind, inputs, [out], **attrs)
        return out

    def linear(self, name: str, x: str, k: int, n: int, bias: bool) -> str:
        shape = self.g.tensors[x].shape[:-1] + (n,)
        ins = [x, self.t(f"{name}.weight", (k, n), weight=True)]
        if bias:
            ins.append(self.t(f"{name}.bias", (n,), weight=True))
        return self.op("linear", name, ins, shape)

    def norm(self, name: str, x: str, kind: str) -> str:
        h = self.g.tensors[x].shape[-1]
        ins = [x, self.t(f"{name}.weight", (h,), weight=True)]
        if kind == "layernorm":
            ins.append(self.t(f"{name}.bias", (h,), weight=True))
        return self.op(kind, name, ins, self.g.tensors[x].shape)


def build_llm_graph(cfg: LLMConfig, phase: str = "prefill", *, batch: int = 1, seq_len: int = 128,
                    kv_len: int = 0, kv_format: str | None = None) -> Graph:
    """The graph of one ``phase`` step of ``cfg`` (module docstring); shapes only, no weight values."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, not {batch!r}")
    s, t = phase_tokens(cfg, phase, seq_len, kv_len)
    g = Graph(f"{cfg.name}-{phase}-b{batch}-" + (f"s{s}" if phase == "prefill" else f"kv{kv_len}"))
    b = _Builder(g, QuantSpec(kv_format) if kv_format else None)
    x = _embeddings(b, cfg, batch, s)
    g.inputs = ("input_ids",)
    for i in range(cfg.layers):
        x = _layer(b, cfg, f"l{i}", x, batch, s, t)
    g.outputs = (_head(b, cfg, x, batch, s),)
    return g


def _embeddings(b: _Builder, cfg: LLMConfig, batch: int, s: int) -> str:
    h = cfg.hidden
    ids = b.t("input_ids", (batch, s))
    x = b.op("embedding", "embed_tokens", [ids, b.t("embed_tokens.weight", (cfg.vocab, h), weight=True)],
             (batch, s, h))
    if cfg.positions == "learned":
        table = b.t("embed_positions.weight", (cfg.max_positions + cfg.position_offset, h), weight=True)
        pos = b.op("embedding", "embed_positions", [ids, table], (batch, s, h))
        x = b.op("add", "embed_add", [x, pos], (batch, s, h))
    if cfg.token_types:
        types = b.op("embedding", "embed_types", [ids, b.t("embed_types.weight", (cfg.token_types, h), weight=True)],
                     (batch, s, h))
        x = b.op("add", "embed_types_add", [x, types], (batch, s, h))
    if not cfg.decoder:
        x = b.norm("embed_norm", x, cfg.norm)
    return x


def _layer(b: _Builder, cfg: LLMConfig, p: str, x: str, batch: int, s: int, t: int) -> str:
    h = cfg.hidden
    a_in = b.norm(f"{p}.attn_norm", x, cfg.norm) if cfg.pre_norm else x
    attn = _attention(b, cfg, p, a_in, batch, s, t)
    x = b.op("add", f"{p}.attn_residual", [x, attn], (batch, s, h))
    if not cfg.pre_norm:
        x = b.norm(f"{p}.attn_norm", x, cfg.norm)
    m_in = b.norm(f"{p}.mlp_norm", x, cfg.norm) if cfg.pre_norm else x
    x = b.op("add", f"{p}.mlp_residual", [x, _mlp(b, cfg, p, m_in, batch, s)], (batch, s, h))
    if not cfg.pre_norm:
        x = b.norm(f"{p}.mlp_norm", x, cfg.norm)
    return x


def _attention(b: _Builder, cfg: LLMConfig, p: str, x: str, batch: int, s: int, t: int) -> str:
    h, d, nq, nkv, r = cfg.hidden, cfg.head_dim, cfg.heads, cfg.kv_heads, cfg.kv_groups
    q = b.linear(f"{p}.q_proj", x, h, nq * d, cfg.qkv_bias)
    k = b.linear(f"{p}.k_proj", x, h, nkv * d, cfg.qkv_bias)
    v = b.linear(f"{p}.v_proj", x, h, nkv * d, cfg.qkv_bias)
    if cfg.positions == "rope":
        q = b.op("rope", f"{p}.q_rope", [q], (batch, s, nq * d))
        k = b.op("rope", f"{p}.k_rope", [k], (batch, s, nkv * d))
    k = b.op("transpose", f"{p}.k_heads", [k], (batch, nkv, s, d))
    v = b.op("transpose", f"{p}.v_heads", [v], (batch, nkv, s, d))
    if cfg.decoder:
        k = _kv_write(b, f"{p}.k_cache", k, (batch, nkv, t, d))
        v = _kv_write(b, f"{p}.v_cache", v, (batch, nkv, t, d))
    kt = b.t(f"{p}.k_cache_t", (batch, nkv, d, t), quant=b.g.tensors[k].quant)
    b.g.add_op(f"{p}.k_cache_t", "transpose", [k], [kt])
    qg = b.op("transpose", f"{p}.q_groups", [q], (batch, nkv, r * s, d))
    scores = b.op("matmul", f"{p}.scores", [qg, kt], (batch, nkv, r * s, t))
    causal = {"causal": True, "query_groups": r} if cfg.decoder else {}
    probs = b.op("softmax", f"{p}.softmax", [scores], (batch, nkv, r * s, t), **causal)
    ctx = b.op("matmul", f"{p}.context", [probs, v], (batch, nkv, r * s, d))
    ctx = b.op("transpose", f"{p}.merge_heads", [ctx], (batch, s, nq * d))
    return b.linear(f"{p}.o_proj", ctx, nq * d, h, cfg.out_bias)


def _kv_write(b: _Builder, name: str, new: str, cache_shape) -> str:
    cache = b.t(name, cache_shape, quant=b.kv_quant)
    b.g.add_op(f"{name}_write", "kv_write", [new], [cache])
    return cache


def _mlp(b: _Builder, cfg: LLMConfig, p: str, x: str, batch: int, s: int) -> str:
    h, i = cfg.hidden, cfg.intermediate
    if cfg.mlp == "swiglu":
        gate = b.linear(f"{p}.gate_proj", x, h, i, cfg.mlp_bias)
        up = b.linear(f"{p}.up_proj", x, h, i, cfg.mlp_bias)
        act = b.op("swiglu", f"{p}.swiglu", [gate, up], (batch, s, i))
        return b.linear(f"{p}.down_proj", act, i, h, cfg.mlp_bias)
    act = b.op(cfg.mlp, f"{p}.{cfg.mlp}", [b.linear(f"{p}.fc1", x, h, i, cfg.mlp_bias)], (batch, s, i))
    return b.linear(f"{p}.fc2", act, i, h, cfg.mlp_bias)


def _head(b: _Builder, cfg: LLMConfig, x: str, batch: int, s: int) -> str:
    h = cfg.hidden
    if not cfg.decoder:  # BERT: pooler on the first ([CLS]) position
        cls = b.op("reshape", "cls_token", [x], (batch, 1, h))
        return b.linear("pooler", cls, h, h, True)
    last = b.op("reshape", "last_token", [x], (batch, 1, h))
    last = b.norm("final_norm", last, cfg.norm) if cfg.pre_norm else last
    if cfg.tied_embeddings:
        weight = b.t("lm_head.weight", (h, cfg.vocab), weight=True)
        b.g.add_op("lm_head.tied", "transpose", ["embed_tokens.weight"], [weight])
    else:
        weight = b.t("lm_head.weight", (h, cfg.vocab), weight=True)
    return b.op("linear", "lm_head", [last, weight], (batch, 1, cfg.vocab))
