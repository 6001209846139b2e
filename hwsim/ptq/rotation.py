"""Rotation (QuaRot, Ashkboos et al., 2024; SpinQuant, Liu et al., 2024): spread outliers with orthogonal maps.

Residual rotation (RMSNorm / llama graphs, ``residual: auto|true``). RMSNorm commutes with an orthogonal
``Q`` once its γ is folded away: ``rms(xQ) = rms(x)``, so with ``x' = xQ`` on the whole residual stream::

    embedding            E'  = E Q                       (token rows rotated)
    norm → linear        W'  = Qᵀ diag(γ) W,  γ := 1     (q/k/v, gate/up, and the lm head)
    linear → residual    W'  = W Q,  b' = b Q            (attention output, FFN down)

A tied lm head is untied (``output.weight = Qᵀ diag(γ_final) E``, a new tensor). ``Q = diag(s) H_n / sqrt(n)``
(the randomized Hadamard of QuaRot) with signs ``s = ±1`` drawn from ``seed`` and ``H_n`` the Kronecker
Hadamard of :mod:`hwsim.hadamard` (576 = 12·12·4: two Paley H12 factors ⊗ Sylvester H4).

Online rotation (``online`` patterns; default ``*.ffn_down`` for LLM graphs, every linear for LayerNorm
encoders, whose post-LN residual stream cannot be rotated offline): a ``hadamard`` op (its own kind: an
``n·Σ(f−1)``-add factorised transform on the vector unit, exact on integer codes) computes ``x H/sqrt(n)``
before the linear and ``W' = (H/sqrt(n))ᵀ W``. Kept as its own op rather than a ``linear`` with a
constant ±1 weight because a dense GEMM would charge ``n²`` MACs per row instead of ``n·Σ(f−1)`` adds, and
would add one more activation quantization (of its input) that the fast transform does not need.

Changed weights lose their QuantSpec (a stored GGUF block no longer describes them); the float function of
the graph is unchanged up to float32 rounding of the rotated weights.
"""

from __future__ import annotations

import fnmatch

import numpy as np

from hwsim import hadamard
from hwsim.ptq.recipe import RecipeStep, register_step


@register_step
class Rotation(RecipeStep):
    name = "rotation"
    needs = frozenset()
    defaults = {"seed": 0, "residual": "auto", "online": "auto"}

    @classmethod
    def check(cls, ck, p, path):
        if isinstance(p["seed"], bool) or not isinstance(p["seed"], int) or p["seed"] < 0:
            ck.add(f"{path}.seed", f"expected a non-negative integer, not {p['seed']!r}")
        if p["residual"] not in ("auto", True, False):
            ck.add(f"{path}.residual", f"expected auto, true or false, not {p['residual']!r}")
        o = p["online"]
        if o != "auto" and not (isinstance(o, list) and all(isinstance(x, str) for x in o)):
            ck.add(f"{path}.online", f"expected auto or a list of op-name patterns, not {o!r}")

    def apply(self, graph, stats):
        llm = _rmsnorm_graph(graph)
        residual = llm if self.params["residual"] == "auto" else bool(self.params["residual"])
        online = self.params["online"]
        if online == "auto":
            online = ["*.ffn_down"] if llm else ["*"]
        g = graph.edit()
        if residual:
            if not llm:
                raise ValueError(f"rotation: residual rotation needs an RMSNorm graph with one embedding; "
                                 f"graph {graph.name!r} has LayerNorms (use online rotation: residual: false)")
            rotate_residual(g, graph, residual_matrix(_hidden(graph), int(self.params["seed"])))
        add_online(g, online)
        return g


def residual_matrix(n: int, seed: int) -> np.ndarray:
    """``Q = diag(s) H_n / sqrt(n)``, ``s`` seeded ±1 (float64, orthogonal)."""
    signs = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=n)
    return signs[:, None] * hadamard.matrix(n).astype(np.float64) / np.sqrt(n)


def _rmsnorm_graph(graph) -> bool:
    kinds = {op.kind for op in graph.ops}
    return "rmsnorm" in kinds and "layernorm" not in kinds and \
        sum(op.kind == "embedding" for op in graph.ops) == 1


def _hidden(graph) -> int:
    emb = next(op for op in graph.ops if op.kind == "embedding")
    return int(graph.tensors[emb.outputs[0]].shape[-1])


def _set(g, name: str, value: np.ndarray) -> None:
    g.set_weight(name, value.astype(np.float32))
    g.set_quant(name, None)


def rotate_residual(g, graph, q: np.ndarray) -> None:
    """Fold ``q`` into the embedding, every norm→linear and every linear→residual weight of ``g``."""
    users = graph.consumers()
    w64 = {name: np.asarray(v, np.float64) for name, v in graph.weights.items()}
    emb = next(op for op in graph.ops if op.kind == "embedding")
    transposed = bool(emb.attrs.get("table_transposed"))
    for op in graph.ops:
        if op.kind != "rmsnorm":
            continue
        gamma = w64[op.inputs[1]]
        readers = users.get(op.outputs[0], [])
        if not readers or any(u.kind != "linear" or u.inputs[0] != op.outputs[0] for u in readers):
            raise ValueError(f"rotation: norm {op.name!r} output must feed only linears to fold γ")
        for u in readers:
            w = q.T @ (gamma[:, None] * w64[u.inputs[1]])
            if u.inputs[1] in emb.inputs:  # tied head: untie
                name = u.name + ".weight"
                g.add_tensor(name, w.shape, is_weight=True)
                g.weights[name] = w.astype(np.float32)
                g.rewire(u.name, u.inputs[1], name)
            else:
                _set(g, u.inputs[1], w)
            if len(u.inputs) > 2:
                raise ValueError(f"rotation: linear {u.name!r} after a norm has a bias; not supported")
        _set(g, op.inputs[1], np.ones_like(gamma))
    for op in graph.ops:
        if op.kind == "linear" and users.get(op.outputs[0]) and all(u.kind == "add" for u in users[op.outputs[0]]):
            _set(g, op.inputs[1], w64[op.inputs[1]] @ q)
            if len(op.inputs) > 2:
                _set(g, op.inputs[2], w64[op.inputs[2]] @ q)
    table = emb.inputs[1]
    _set(g, table, q.T @ w64[table] if transposed else w64[table] @ q)


def add_online(g, patterns: list) -> None:
    """Insert one ``hadamard`` op per input tensor of the linears matching ``patterns``; fold Hᵀ into W."""
    done: dict[str, str] = {}
    for op in list(g.ops):
        if op.kind != "linear" or not any(fnmatch.fnmatchcase(op.name, p) for p in patterns):
            continue
        x = op.inputs[0]
        k = g.tensors[op.inputs[1]].shape[0]
        if x not in done:
            done[x] = x + ".rot"
            g.add_tensor(done[x], g.tensors[x].shape)
            g.insert_op_before(op.name, op.name + ".hadamard", "hadamard", [x], [done[x]])
        h = hadamard.matrix(k).astype(np.float64) / np.sqrt(k)
        _set(g, op.inputs[1], h.T @ np.asarray(g.weights[op.inputs[1]], np.float64))
        g.rewire(op.name, x, done[x])
