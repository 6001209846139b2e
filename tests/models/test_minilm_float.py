"""MiniLM-L6 float forward against a direct, independently written float64 reference."""

import math

import numpy as np
import pytest

from hwsim import float_executor as execute
from hwsim.graph import Graph
from hwsim.models import corpus, minilm


def _reference(weights, ids, mask, layers, eps=1e-12, heads=12):
    """Textbook BERT forward, one sentence and one head at a time, float64, math.erf."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    out = []
    for b in range(ids.shape[0]):
        n = int(mask[b].sum())
        tok = ids[b, :n]

        def ln(x, name):
            mu = x.mean(-1, keepdims=True)
            sd = np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
            return (x - mu) / sd * w[name + ".weight"] + w[name + ".bias"]

        def dense(x, name):
            return x @ w[name + ".weight"].T + w[name + ".bias"]

        x = (w["embeddings.word_embeddings.weight"][tok] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = ln(x, "embeddings.LayerNorm")
        for i in range(layers):
            p = f"encoder.layer.{i}."
            q, k, v = (dense(x, p + "attention.self." + t) for t in ("query", "key", "value"))
            dh = q.shape[1] // heads
            ctx = np.zeros_like(q)
            for h in range(heads):
                sl = slice(h * dh, (h + 1) * dh)
                s = q[:, sl] @ k[:, sl].T / math.sqrt(dh)
                e = np.exp(s - s.max(1, keepdims=True))
                ctx[:, sl] = (e / e.sum(1, keepdims=True)) @ v[:, sl]
            x = ln(dense(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            f = dense(x, p + "intermediate.dense")
            f = 0.5 * f * (1 + np.vectorize(math.erf)(f / math.sqrt(2)))
            x = ln(dense(f, p + "output.dense") + x, p + "output.LayerNorm")
        out.append(x.mean(0))
    return np.array(out)


@pytest.mark.parametrize("layers", [1, 6])
def test_float_forward_matches_direct_reference(minilm_model, layers):
    config, weights, tok = minilm_model
    ids, mask = tok(corpus.sentences("eval", 2))
    g = minilm_graph = minilm_build(config, weights, ids, layers)
    got = execute.run_graph(g, {"input_ids": ids, "attention_mask": mask}, execute.FloatBackend())["pooled"]
    ref = _reference(weights, ids, mask, layers)
    assert np.max(np.abs(got - ref)) < 2e-6 * max(1.0, np.max(np.abs(ref)))
    assert isinstance(minilm_graph, Graph)


def minilm_build(config, weights, ids, layers):
    return minilm.build_graph(config, weights, *ids.shape, layers=layers)


def test_graph_shape_and_macs(minilm_model):
    config, weights, _ = minilm_model
    g = minilm.build_graph(config, weights, 2, 10)
    rows = g.to_rows()
    kinds = [r["kind"] for r in rows]
    assert kinds.count("layernorm") == 13 and kinds.count("linear") == 36 and kinds.count("matmul") == 12
    per_layer = 10 * (4 * 384 * 384 + 2 * 384 * 1536) + 2 * 12 * 10 * 10 * 32
    assert g.total_macs == 2 * 6 * per_layer
    qkv = next(r for r in rows if r["name"] == "encoder.layer.0.attention.self.query")
    assert (qkv["M"], qkv["K"], qkv["N"]) == (20, 384, 384)


def test_tokenizer_pads_and_masks(minilm_model):
    _, _, tok = minilm_model
    ids, mask = tok(["Hello world.", "A somewhat longer sentence follows here."])
    assert ids[0, 0] == 101 and ids.shape == mask.shape
    assert mask[0].sum() < mask[1].sum() and ids[0, mask[0].sum():].sum() == 0
    with pytest.raises(ValueError, match="non-empty list of str"):
        tok("not a list")


def test_unknown_op_kind_names_op():
    g = Graph("g")
    g.add_tensor("x", (2,))
    with pytest.raises(ValueError, match="op 'bad' has unsupported kind.*not 'frobnicate'"):
        g.add_op("bad", "frobnicate", ["x"], ["x"])


def test_vectorised_erf_matches_libm_within_3_ulp():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-7, 7, 200_000), np.linspace(-1.01, 1.01, 2001),
                        [0.0, -0.0, 1.0, -1.0, 8.0, 26.9, 27.0, -30.0, 1e-300, 5e-324, 0.5]])
    ref = np.array([math.erf(v) for v in x])
    got = execute.erf(x.reshape(4, -1)).ravel()  # shape is kept
    ulp = np.abs(got - ref) / np.spacing(np.abs(ref).clip(1e-300))
    assert ulp.max() <= 3.0
    special = execute.erf(np.array([np.inf, -np.inf, np.nan]))
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2])
