"""SmoothQuant (Xiao et al., ICML 2023): migrate activation outliers into the weights, offline.

For a norm output ``x`` (LayerNorm/RMSNorm, the kinds in ``producers``) consumed by linears, per input
channel ``c``::

    λ_c = clip( amax(x_c)^α / amax(W_c,:)^(1-α), 1e-3, 1e3 )

with ``amax(W_c,:)`` the largest |weight| of row ``c`` over every consuming linear. The norm's γ and β are
divided by λ (the norm now outputs ``x / λ``), every consuming linear's weight rows are multiplied by λ,
and the other consumers (the residual ``add``, pooling) read ``x`` back through an inserted ``mul`` by
the constant λ — which the integer executor applies by rescaling (per-channel requant multipliers),
without touching codes. The float function of the graph is unchanged (up to float rounding).
Producers with other consumers (e.g. a GELU output feeding a non-foldable path) are left alone.
"""

from __future__ import annotations

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step

LAMBDA_RANGE = (1e-3, 1e3)
FOLDABLE_USERS = frozenset({"linear", "add", "mean_pool"})


@register_step
class SmoothQuant(RecipeStep):
    name = "smoothquant"
    needs = frozenset({"amax_channel"})
    defaults = {"alpha": 0.5, "producers": ["layernorm", "rmsnorm"]}

    @classmethod
    def check(cls, ck, p, path):
        a = p["alpha"]
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            ck.add(f"{path}.alpha", f"expected a number in 0..1, not {a!r}")
        bad = [k for k in p["producers"] if k not in ("layernorm", "rmsnorm")] \
            if isinstance(p["producers"], list) else [p["producers"]]
        if bad:
            ck.add(f"{path}.producers", f"expected a list of 'layernorm'/'rmsnorm', not {p['producers']!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        users = graph.consumers()
        for op in graph.ops:
            p = self.params_for(op.name)
            if op.kind not in p["producers"]:
                continue
            t = op.outputs[0]
            linears = [u for u in users.get(t, []) if u.kind == "linear" and u.inputs[0] == t]
            if not linears or any(u.kind not in FOLDABLE_USERS for u in users.get(t, [])):
                continue
            stats.require(t, "amax_channel")
            lam = smoothing_factors(stats.amax_channel[t], [graph.weights[u.inputs[1]] for u in linears],
                                    float(p["alpha"]))
            _fold(g, graph, op, t, lam, linears, [u for u in users[t] if u.kind != "linear"])
        return g


def smoothing_factors(x_amax, weights, alpha: float) -> np.ndarray:
    """λ per input channel (float32, as stored in the graph) from activation and weight-row maxima."""
    x_amax = np.maximum(np.asarray(x_amax, np.float64), 1e-6)
    w_amax = np.max([np.abs(np.asarray(w, np.float64)).max(axis=1) for w in weights], axis=0)
    lam = np.clip(x_amax**alpha / np.maximum(w_amax, 1e-6) ** (1 - alpha), *LAMBDA_RANGE)
    return lam.astype(np.float32)


def _fold(g, graph, op, t: str, lam: np.ndarray, linears, others) -> None:
    lam64 = lam.astype(np.float64)
    g.set_weight(op.inputs[1], (np.asarray(graph.weights[op.inputs[1]], np.float64) / lam64).astype(np.float32))
    if op.kind == "layernorm" and len(op.inputs) > 2:
        g.set_weight(op.inputs[2], (np.asarray(graph.weights[op.inputs[2]], np.float64) / lam64).astype(np.float32))
    for u in linears:
        w = np.asarray(graph.weights[u.inputs[1]], np.float64)
        g.set_weight(u.inputs[1], (w * lam64[:, None]).astype(np.float32))
    if not others:
        return
    lam_name, restored = t + ".smooth_lambda", t + ".unsmoothed"
    g.add_tensor(lam_name, lam.shape, is_weight=True)
    g.weights[lam_name] = lam
    g.add_tensor(restored, graph.tensors[t].shape)
    g.insert_op(op.name, op.name + ".unsmooth", "mul", [t, lam_name], [restored])
    for u in others:
        g.rewire(u.name, t, restored)
