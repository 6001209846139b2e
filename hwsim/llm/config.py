"""Transformer shapes from a Hugging Face ``config.json`` or a built-in name (shapes only, no weights).

Families (``model_type``)::

    llama, mistral, qwen2   decoder, RMSNorm, RoPE, SwiGLU MLP, grouped-query attention;
                            qwen2 has q/k/v biases, llama an optional ``attention_bias``
    gpt2                    decoder, LayerNorm, learned positions, GELU MLP, biases, tied lm_head
    opt                     decoder, LayerNorm, learned positions (offset 2), ReLU MLP, biases
    bert                    encoder, post-LayerNorm, learned positions + token types, GELU, pooler

Keys read are the families' own names (``hidden_size``/``n_embd``, ``num_key_value_heads``, ``head_dim``,
``intermediate_size``/``ffn_dim``/``n_inner``, ``tie_word_embeddings``, ...); other keys of a full
``config.json`` are ignored. Built-ins (``hwsim/data/llm_configs.yaml``): :func:`builtin_names`.

:func:`parameter_count` counts every weight and bias of the model the config describes::

    embeddings  vocab*H (+ positions*H, + types*H)        lm_head  vocab*H unless tied
    per layer   H*(heads + 2*kv_heads)*head_dim + heads*head_dim*H     (+ biases)
                + MLP: 3*H*I (SwiGLU) or 2*H*I + I + H (GELU/ReLU)    + norms (H, or 2H with bias)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hwsim.errors import ConfigError
from hwsim.perf.config_checks import Checker, load_yaml_mapping

_BUILTINS_PATH = Path(__file__).resolve().parent.parent / "data" / "llm_configs.yaml"
LLAMA_FAMILY = ("llama", "mistral", "qwen2")
FAMILIES = LLAMA_FAMILY + ("gpt2", "opt", "bert")


@dataclass(frozen=True, kw_only=True)
class LLMConfig:
    """Shapes of one transformer; see the module docstring for the families."""

    name: str
    family: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool
    norm: str  # rmsnorm | layernorm
    mlp: str  # swiglu | gelu | relu
    positions: str  # rope | learned
    max_positions: int
    position_offset: int = 0
    token_types: int = 0
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    decoder: bool = True
    pre_norm: bool = True
    pooler: bool = False

    @property
    def kv_groups(self) -> int:
        """Query heads per KV head (grouped-query attention; 1 = multi-head)."""
        return self.heads // self.kv_heads

    @property
    def norm_params(self) -> int:
        return self.hidden * (2 if self.norm == "layernorm" else 1)


def parameter_count(cfg: LLMConfig) -> int:
    """Weights and biases of ``cfg`` (module docstring)."""
    h, q, kv = cfg.hidden, cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    emb = cfg.vocab * h + (cfg.max_positions + cfg.position_offset) * h * (cfg.positions == "learned")
    emb += cfg.token_types * h
    attn = h * (q + 2 * kv) + q * h + (q + 2 * kv) * cfg.qkv_bias + h * cfg.out_bias
    if cfg.mlp == "swiglu":
        mlp = 3 * h * cfg.intermediate
    else:
        mlp = 2 * h * cfg.intermediate + (cfg.intermediate + h) * cfg.mlp_bias
    layer = attn + mlp + 2 * cfg.norm_params
    head = 0 if cfg.tied_embeddings or not cfg.decoder else cfg.vocab * h
    extra = cfg.norm_params  # final norm (decoders) or embedding norm (bert)
    if cfg.pooler:
        extra += h * h + h
    return emb + cfg.layers * layer + head + extra


def config_from_dict(data: dict, *, name: str, source: str = "<dict>") -> LLMConfig:
    """Build an :class:`LLMConfig` from a Hugging Face config mapping; one :class:`ConfigError` lists all problems."""
    ck = Checker(source)
    if not isinstance(data, dict):
        raise ConfigError(source, [f"config: expected a mapping, not {type(data).__name__}"])
    family = data.get("model_type")
    if family not in FAMILIES:
        raise ConfigError(source, [f"config.model_type: expected one of {list(FAMILIES)}, not {family!r}"])
    cfg = _FAMILY_READERS[family](ck, data, name)
    ck.raise_if_any()
    if cfg.heads % cfg.kv_heads:
        raise ConfigError(source, [f"config.num_key_value_heads: must divide num_attention_heads "
                                   f"({cfg.heads}), not {cfg.kv_heads}"])
    return cfg


def _llama(ck: Checker, d: dict, name: str) -> LLMConfig:
    h = ck.integer(d, "hidden_size", "config")
    heads = ck.integer(d, "num_attention_heads", "config")
    family = d["model_type"]
    return LLMConfig(
        name=name, family=family, hidden=h, layers=ck.integer(d, "num_hidden_layers", "config"), heads=heads,
        kv_heads=ck.integer(d, "num_key_value_heads", "config", heads),
        head_dim=_head_dim(ck, d, h, heads),
        intermediate=ck.integer(d, "intermediate_size", "config"), vocab=ck.integer(d, "vocab_size", "config"),
        tied_embeddings=ck.boolean(d, "tie_word_embeddings", "config", False),
        norm="rmsnorm", mlp="swiglu", positions="rope",
        max_positions=ck.integer(d, "max_position_embeddings", "config", 2048),
        qkv_bias=family == "qwen2" or ck.boolean(d, "attention_bias", "config", False),
        out_bias=family == "llama" and ck.boolean(d, "attention_bias", "config", False),
        mlp_bias=ck.boolean(d, "mlp_bias", "config", False))


def _head_dim(ck: Checker, d: dict, hidden: int, heads: int) -> int:
    if d.get("head_dim") is None:  # absent or null: hidden / heads
        return hidden // max(heads, 1)
    return ck.integer(d, "head_dim", "config")


def _gpt2(ck: Checker, d: dict, name: str) -> LLMConfig:
    h = ck.integer(d, "n_embd", "config")
    heads = ck.integer(d, "n_head", "config")
    inner = d.get("n_inner")
    return LLMConfig(
        name=name, family="gpt2", hidden=h, layers=ck.integer(d, "n_layer", "config"), heads=heads, kv_heads=heads,
        head_dim=h // max(heads, 1), intermediate=ck.integer(d, "n_inner", "config") if inner is not None else 4 * h,
        vocab=ck.integer(d, "vocab_size", "config"), tied_embeddings=True, norm="layernorm", mlp="gelu",
        positions="learned", max_positions=ck.integer(d, "n_positions", "config", 1024),
        qkv_bias=True, out_bias=True, mlp_bias=True)


def _opt(ck: Checker, d: dict, name: str) -> LLMConfig:
    h = ck.integer(d, "hidden_size", "config")
    heads = ck.integer(d, "num_attention_heads", "config")
    if d.get("word_embed_proj_dim", h) != h:
        ck.add("config.word_embed_proj_dim", f"only OPT models without embedding projection are supported "
                                             f"(equal to hidden_size {h}), not {d.get('word_embed_proj_dim')!r}")
    if not d.get("do_layer_norm_before", True):
        ck.add("config.do_layer_norm_before", "only pre-LayerNorm OPT models are supported, not false")
    act = ck.choice(d, "activation_function", "config", ("relu", "gelu"), "relu")
    return LLMConfig(
        name=name, family="opt", hidden=h, layers=ck.integer(d, "num_hidden_layers", "config"), heads=heads,
        kv_heads=heads, head_dim=h // max(heads, 1), intermediate=ck.integer(d, "ffn_dim", "config"),
        vocab=ck.integer(d, "vocab_size", "config"), tied_embeddings=ck.boolean(d, "tie_word_embeddings", "config",
                                                                                True),
        norm="layernorm", mlp=act, positions="learned",
        max_positions=ck.integer(d, "max_position_embeddings", "config", 2048), position_offset=2,
        qkv_bias=True, out_bias=True, mlp_bias=True)


def _bert(ck: Checker, d: dict, name: str) -> LLMConfig:
    h = ck.integer(d, "hidden_size", "config")
    heads = ck.integer(d, "num_attention_heads", "config")
    return LLMConfig(
        name=name, family="bert", hidden=h, layers=ck.integer(d, "num_hidden_layers", "config"), heads=heads,
        kv_heads=heads, head_dim=h // max(heads, 1), intermediate=ck.integer(d, "intermediate_size", "config"),
        vocab=ck.integer(d, "vocab_size", "config"), tied_embeddings=True, norm="layernorm", mlp="gelu",
        positions="learned", max_positions=ck.integer(d, "max_position_embeddings", "config", 512),
        token_types=ck.integer(d, "type_vocab_size", "config", 2), qkv_bias=True, out_bias=True, mlp_bias=True,
        decoder=False, pre_norm=False, pooler=True)


_FAMILY_READERS = {"llama": _llama, "mistral": _llama, "qwen2": _llama, "gpt2": _gpt2, "opt": _opt, "bert": _bert}


@cache
def _builtins() -> dict:
    return load_yaml_mapping(_BUILTINS_PATH, what="llm configs")


def builtin_names() -> tuple[str, ...]:
    """Names of the built-in configs."""
    return tuple(_builtins())


def load_llm_config(spec) -> LLMConfig:
    """A built-in name (``"llama-2-7b"``), a path to a ``config.json`` (or its folder), or an LLMConfig."""
    if isinstance(spec, LLMConfig):
        return spec
    text = str(spec)
    key = text.lower()
    if key in _builtins():
        return config_from_dict(_builtins()[key], name=key, source=f"{_BUILTINS_PATH}:{key}")
    path = Path(text)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"LLM config {text!r}: not a built-in ({', '.join(builtin_names())}) "
                         f"and no such config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), [f"config: not valid JSON ({exc.msg} at line {exc.lineno})"]) from None
    return config_from_dict(data, name=path.parent.name or path.stem, source=str(path))
