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

``alpha: search`` (the grid ``0, 0.1, ..., 1``) or a list of candidates chooses α per norm by the layer output
error with activation quantization in the loop, on the calibration rows ``X`` of ``x`` (``input_rows``)::

    α* = argmin_α  Σ_linears || Q_a(X / λ_α) · W_α − X W ||²,    W_α = diag(λ_α) W  (or Q_w(diag(λ_α) W))

``Q_a`` is the static per-tensor ``search_activations`` quantizer (scale ``max_c amax(x_c)/λ_c``);
``search_weights`` (a format, per output channel) adds the weight quantizer to the loop. The chosen α per
norm is recorded in the graph's ``meta['smoothquant']``.
"""

from __future__ import annotations

import numpy as np

from hwsim.formats import get_format
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.rtn import _known_format
from hwsim.qspec import quantize_to_spec, static_scale, weight_spec, weight_values

LAMBDA_RANGE = (1e-3, 1e3)
FOLDABLE_USERS = frozenset({"linear", "add", "mean_pool"})
SEARCH_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 3))


@register_step
class SmoothQuant(RecipeStep):
    name = "smoothquant"
    needs = frozenset({"amax_channel"})
    defaults = {"alpha": 0.5, "producers": ["layernorm", "rmsnorm"], "search_activations": "int8",
                "search_weights": None}

    @classmethod
    def check(cls, ck, p, path):
        a = p["alpha"]
        alphas = a if isinstance(a, list) and a else [0.0] if a == "search" else [a]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0 for v in alphas):
            ck.add(f"{path}.alpha", f"expected a number in 0..1, 'search' or a list of numbers, not {a!r}")
        if not _known_format(p["search_activations"]):
            ck.add(f"{path}.search_activations", f"expected a format name, not {p['search_activations']!r}")
        if p["search_weights"] is not None and (not _known_format(p["search_weights"])
                                                or get_format(p["search_weights"]).kind == "mx"):
            ck.add(f"{path}.search_weights", f"expected a non-MX format name or null, not {p['search_weights']!r}")
        bad = [k for k in p["producers"] if k not in ("layernorm", "rmsnorm")] \
            if isinstance(p["producers"], list) else [p["producers"]]
        if bad:
            ck.add(f"{path}.producers", f"expected a list of 'layernorm'/'rmsnorm', not {p['producers']!r}")

    def extra_needs(self) -> frozenset:
        searched = [self.params["alpha"]] + [o.get("alpha") for _, o in self.overrides]
        return frozenset({"input_rows"}) if any(isinstance(a, (str, list)) for a in searched) else frozenset()

    def apply(self, graph, stats):
        g = graph.edit()
        chosen = dict(graph.meta.get("smoothquant", {}))
        for op, t, linears, others in foldable_norms(graph, lambda o: o.kind in self.params_for(o.name)["producers"]):
            p = self.params_for(op.name)
            stats.require(t, "amax_channel")
            ws = [np.asarray(graph.weights[u.inputs[1]], np.float64) for u in linears]
            alpha = p["alpha"]
            if isinstance(alpha, (str, list)):
                stats.require(t, "input_rows")
                grid = SEARCH_GRID if alpha == "search" else tuple(float(a) for a in alpha)
                alpha = search_alpha(np.asarray(stats.input_rows[t], np.float64), stats.amax_channel[t], ws, grid,
                                     p["search_activations"], p["search_weights"])
            chosen[op.name] = float(alpha)
            lam = smoothing_factors(stats.amax_channel[t], ws, float(alpha))
            fold_scales(g, graph, op, t, lam, linears, others)
        g.meta["smoothquant"] = chosen
        return g


def foldable_norms(graph, accept):
    """``(op, t, linears, others)`` for each op with ``accept(op)`` whose output ``t`` feeds linears a
    per-channel λ can be folded into (:func:`foldable_consumers`) — the sites SmoothQuant, AQAS and the
    FPQ exponent shift rescale."""
    users = graph.consumers()
    for op in graph.ops:
        if not accept(op):
            continue
        t = op.outputs[0]
        linears, others = foldable_consumers(users, t)
        if linears:
            yield op, t, linears, others


def foldable_consumers(users: dict, t: str) -> tuple[list, list]:
    """The linears reading norm output ``t`` and its other consumers, when a per-channel λ can be folded
    (every consumer is a linear, a residual ``add`` or pooling); ``([], [])`` otherwise."""
    linears = [u for u in users.get(t, []) if u.kind == "linear" and u.inputs[0] == t]
    if not linears or any(u.kind not in FOLDABLE_USERS for u in users.get(t, [])):
        return [], []
    return linears, [u for u in users[t] if u.kind != "linear"]


def search_alpha(x, x_amax, weights, grid, act_fmt: str, weight_fmt: str | None = None) -> float:
    """α of ``grid`` minimising ``Σ ||Q_a(x/λ) · diag(λ)W − x W||²`` (optionally ``Q_w`` on the weights)."""
    errors = []
    for alpha in grid:
        lam = smoothing_factors(x_amax, weights, float(alpha)).astype(np.float64)
        scale = static_scale(float((np.asarray(x_amax, np.float64) / lam).max()), act_fmt)
        xq = get_format(act_fmt).decode(quantize_to_spec(x / lam, act_fmt, scale)) * scale
        err = 0.0
        for w in weights:
            ws = w * lam[:, None]
            if weight_fmt is not None:
                ws = weight_values(weight_spec(ws, weight_fmt, "channel"))
            err += float(((xq @ ws - x @ w) ** 2).sum())
        errors.append(err)
    return float(grid[int(np.argmin(errors))])


def smoothing_factors(x_amax, weights, alpha: float) -> np.ndarray:
    """λ per input channel (float32, as stored in the graph) from activation and weight-row maxima."""
    x_amax = np.maximum(np.asarray(x_amax, np.float64), 1e-6)
    w_amax = np.max([np.abs(np.asarray(w, np.float64)).max(axis=1) for w in weights], axis=0)
    lam = np.clip(x_amax**alpha / np.maximum(w_amax, 1e-6) ** (1 - alpha), *LAMBDA_RANGE)
    return lam.astype(np.float32)


def fold_scales(g, graph, op, t: str, lam: np.ndarray, linears, others) -> None:
    lam64 = lam.astype(np.float64)
    g.set_weight(op.inputs[1], (np.asarray(graph.weights[op.inputs[1]], np.float64) / lam64).astype(np.float32))
    if op.kind == "layernorm" and len(op.inputs) > 2:
        g.set_weight(op.inputs[2], (np.asarray(graph.weights[op.inputs[2]], np.float64) / lam64).astype(np.float32))
    for u in linears:
        w = np.asarray(graph.weights[u.inputs[1]], np.float64)
        own = g.untie(u.name, u.inputs[1])  # a tied lm_head must not rescale the embedding table
        g.set_weight(own, (w * lam64[:, None]).astype(np.float32))
    if not others:
        return
    lam_name, restored = t + ".smooth_lambda", t + ".unsmoothed"
    g.add_tensor(lam_name, lam.shape, is_weight=True)
    g.weights[lam_name] = lam
    g.add_tensor(restored, graph.tensors[t].shape)
    g.insert_op(op.name, op.name + ".unsmooth", "mul", [t, lam_name], [restored])
    for u in others:
        g.rewire(u.name, t, restored)
