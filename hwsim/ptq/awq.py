"""AWQ (Lin et al., MLSys 2024, "AWQ: Activation-aware Weight Quantization for LLM Compression and
Acceleration"): protect the weight rows of salient input channels by scaling them up before quantization.

For the linears ``y_i = x @ W_i`` that share one input ``x[rows, K]`` (q/k/v, gate/up, or a single linear),
per input channel ``c``::

    s_c = mean|x_c|^α / sqrt(max_c mean|x_c|^α · min_c mean|x_c|^α)        (normalised as in the paper's code)
    x @ W_i = (x / s) @ (diag(s) W_i)  ->  quantize diag(s) W_i

``α`` is searched on the grid ``0, 0.05, ..., 1`` (``alpha_grid``) minimising the summed output error of
those linears with the weight quantizer in the loop, ``Σ_i tr(ΔW_iᵀ H ΔW_i)`` with
``ΔW_i = W_i - diag(s)⁻¹ Q(diag(s) W_i)`` and ``H = 2XᵀX/rows`` (the ``xtx`` statistic: the exact squared output
error over the calibration rows, no activations kept). ``α = 0`` is plain RTN, so the chosen scales never
increase this error. (The paper scores a whole block's output; here each group of linears sharing an
input is scored at its own outputs.) Optional clip search (``clip: output``): per column (or group) the
ratio ``1.0, 0.95, ..., 0.5`` of the range minimising the same output error restricted to that group's
rows (``mse``: the weights' own squared error; ``minmax``: no clipping).

``1/s`` is folded into the op producing ``x`` where the graph allows it: a LayerNorm/RMSNorm (γ and β
divided, other consumers such as the residual add read ``x`` back through a ``mul`` by ``s``, as in
:mod:`hwsim.ptq.smoothquant`), the ``up`` linear of a SwiGLU (``silu(gate)·up`` is linear in ``up``: its
output columns are divided), or the value projection feeding an attention context (when the context
width equals ``v``'s output width, i.e. no grouped-query sharing). Otherwise (``unfoldable: mul``) an explicit
per-channel ``mul`` by ``1/s`` is inserted before the linears — a vector op the cost model charges — or
(``unfoldable: skip``) the group is quantized round-to-nearest unscaled. Linears whose weight is shared
with another op (a tied embedding/head) are not scaled. The float function of the graph is unchanged.
"""

from __future__ import annotations

import numpy as np

from hwsim.ptq.gptq import check_quantizer_params, output_error
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.smoothquant import fold_scales
from hwsim.ptq.weight_quantizer import WeightQuantizer
from hwsim.qspec import weight_spec, weight_values

ALPHA_GRID = tuple(np.round(np.linspace(0.0, 1.0, 21), 3))
CLIP_RATIOS = tuple(np.round(np.linspace(1.0, 0.5, 11), 3))
VIEW_KINDS = frozenset({"reshape", "transpose"})
NORM_FOLD_USERS = frozenset({"linear", "add", "mean_pool"})


def awq_scales(absmean: np.ndarray, alpha: float) -> np.ndarray:
    """Per-input-channel scales ``s = absmean^α`` normalised by ``sqrt(max · min)`` (float64)."""
    s = np.maximum(np.asarray(absmean, np.float64), 1e-8) ** alpha
    return s / np.sqrt(s.max() * s.min())


def scaled_error(weights, quantizers, h: np.ndarray, s: np.ndarray) -> float:
    """``Σ_i tr(ΔW_iᵀ H ΔW_i)`` for weights scaled by ``s``, quantized, and scaled back."""
    s = s[:, None]
    return sum(output_error(w, q.dequantize(w * s) / s, h) for w, q in zip(weights, quantizers, strict=True))


def search_alpha(weights, quantizers, h, absmean, grid=ALPHA_GRID) -> tuple[float, np.ndarray, list]:
    """Best ``α`` of ``grid``, its scales and the error of every grid point."""
    errors = [scaled_error(weights, quantizers, h, awq_scales(absmean, a)) for a in grid]
    best = int(np.argmin(errors))
    return float(grid[best]), awq_scales(absmean, grid[best]), errors


def output_clip(w_scaled: np.ndarray, s: np.ndarray, h: np.ndarray, quantizer: WeightQuantizer) -> np.ndarray:
    """Per column/group clip ratio of ``W' = diag(s) W`` minimising that group's output error (shape of ``W'``)."""
    k, n = w_scaled.shape
    gs = quantizer.group_size if quantizer.granularity == "group" else k
    blocks = np.stack([h[i:i + gs, i:i + gs] for i in range(0, k, gs)])  # [groups, gs, gs]
    errors = []
    for r in CLIP_RATIOS:
        spec = weight_spec(w_scaled, quantizer.fmt, quantizer.granularity, quantizer.group_size,
                           symmetric=quantizer.symmetric, clip_ratio=r)
        d = ((w_scaled - weight_values(spec)) / s[:, None]).reshape(k // gs, gs, n)
        errors.append(np.sum(d * (blocks @ d), axis=1))  # [groups, N]
    best = np.asarray(CLIP_RATIOS)[np.argmin(np.stack(errors), axis=0)]
    return np.repeat(best, gs, axis=0)


@register_step
class AWQ(RecipeStep):
    name = "awq"
    needs = frozenset({"xtx", "absmean_channel"})
    defaults = {"weights": "int4", "granularity": "channel", "group_size": None, "symmetric": True,
                "clip": "minmax", "alpha_grid": list(ALPHA_GRID), "unfoldable": "mul"}

    @classmethod
    def check(cls, ck, p, path):
        check_quantizer_params(ck, {**p, "clip": "minmax" if p["clip"] == "output" else p["clip"]}, path)
        grid = p["alpha_grid"]
        if not isinstance(grid, list) or not grid or any(
                isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a <= 1 for a in grid):
            ck.add(f"{path}.alpha_grid", f"expected a non-empty list of numbers in 0..1, not {grid!r}")
        if p["unfoldable"] not in ("mul", "skip"):
            ck.add(f"{path}.unfoldable", f"expected one of ['mul', 'skip'], not {p['unfoldable']!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        users = graph.consumers()
        weight_users = {}
        for op in graph.ops:
            for t in op.inputs:
                weight_users.setdefault(t, []).append(op)
        report = dict(graph.meta.get("awq", {}))
        groups, done = [], set()
        for op in graph.ops:  # phase 1: search and fold the scales of every group of linears sharing an input
            if op.kind != "linear" or op.name in done:
                continue
            x = op.inputs[0]
            group = [u for u in users.get(x, []) if u.kind == "linear" and u.inputs[0] == x]
            done.update(u.name for u in group)
            params = [self.params_for(u.name) for u in group]
            if any(p["weights"] in ("keep", "float") for p in params):
                for u, p in zip(group, params, strict=True):
                    if p["weights"] == "float":
                        g.set_quant(u.inputs[1], None)
                continue
            groups.append((x, group, params) + self._scale(graph, g, stats, x, group, params, users, weight_users))
        for x, group, params, alpha, s, where in groups:  # phase 2: quantize the final (scaled) weights
            report.update(self._quantize(g, stats.hessian(x), group, params, alpha, s, where))
        g.meta["awq"] = report
        return g

    def _scale(self, graph, g, stats, x, group, params, users, weight_users) -> tuple:
        """Search ``α`` for one group, fold ``1/s``; returns ``(alpha, s, where)``."""
        quantizers = [WeightQuantizer.from_params({**p, "clip": "minmax"}) for p in params]
        weights = [np.asarray(g.weights[u.inputs[1]], np.float64) for u in group]
        for u, q, w in zip(group, quantizers, weights, strict=True):
            problem = q.check_shape(w.shape[0])
            if problem:
                raise ValueError(f"awq: op {u.name!r}: {problem}; set group_size for it with an override")
        tied = any(len(weight_users[u.inputs[1]]) > 1 for u in group)
        fold = None if tied else _fold_target(graph, x, users)
        if fold is not None and fold[0] != "norm" and self.params_for(fold[1].name)["weights"] in ("keep", "float"):
            fold = None  # the producing linear keeps its stored weights: do not change them
        if tied or (fold is None and (params[0]["unfoldable"] == "skip" or x not in graph.producers())):
            return 0.0, np.ones(weights[0].shape[0]), "tied weight: not scaled" if tied else "not scaled"
        grid = tuple(float(a) for a in params[0]["alpha_grid"])
        alpha, s, _ = search_alpha(weights, quantizers, stats.hessian(x), stats.absmean_channel(x), grid)
        if alpha == 0.0:
            return 0.0, np.ones_like(s), "alpha 0: not scaled"
        s32 = s.astype(np.float32)
        _apply_fold(g, graph, x, s32, group, fold, users)
        return alpha, s32.astype(np.float64), fold[0] if fold is not None else "mul"

    @staticmethod
    def _quantize(g, h, group, params, alpha, s, where) -> dict:
        info = {}
        for u, p in zip(group, params, strict=True):
            q = WeightQuantizer.from_params({**p, "clip": "minmax"})
            ws = np.asarray(g.weights[u.inputs[1]], np.float64)
            if p["clip"] == "output" and not q.is_mx and q.granularity != "tensor":
                spec = weight_spec(ws, q.fmt, q.granularity, q.group_size, symmetric=q.symmetric,
                                   clip_ratio=output_clip(ws, s, h, q))
            else:
                spec = WeightQuantizer.from_params({**p, "clip": "minmax" if p["clip"] == "output" else p["clip"]}
                                                   ).spec(ws)
            g.set_quant(u.inputs[1], spec)
            w = ws / s[:, None]  # the weight in the input's original units
            info[u.name] = {"alpha": alpha, "fold": where,
                            "error": output_error(w, weight_values(spec) / s[:, None], h),
                            "rtn_error": output_error(w, q.dequantize(w), h)}
        return info


def _fold_target(graph, x: str, users) -> tuple | None:
    """Where ``1/s`` on the input ``x`` can be folded: ``(kind, op)`` or None."""
    producers = graph.producers()
    prod = producers.get(x)
    if prod is None:
        return None
    if prod.kind in ("layernorm", "rmsnorm"):
        if all(u.kind in NORM_FOLD_USERS for u in users.get(x, [])):
            return ("norm", prod)
        return None
    if prod.kind == "swiglu":
        up = producers.get(prod.inputs[1])
        if up is not None and up.kind == "linear" and len(users.get(up.outputs[0], [])) == 1:
            return ("up", up)
        return None
    # o_proj: x <- views <- matmul(probabilities, views <- v linear)
    t, chain = x, prod
    while chain is not None and chain.kind in VIEW_KINDS:
        if len(users.get(chain.outputs[0], [])) != 1:
            return None
        chain = producers.get(chain.inputs[0])
    if chain is None or chain.kind != "matmul" or len(users.get(chain.outputs[0], [])) != 1:
        return None
    v = producers.get(chain.inputs[1])
    while v is not None and v.kind in VIEW_KINDS:
        if len(users.get(v.outputs[0], [])) != 1:
            return None
        v = producers.get(v.inputs[0])
    if v is None or v.kind != "linear" or len(users.get(v.outputs[0], [])) != 1:
        return None
    if graph.tensors[v.outputs[0]].shape[-1] != graph.tensors[t].shape[-1]:
        return None  # grouped-query attention: context channels do not map one-to-one onto v's columns
    return ("value", v)


def _apply_fold(g, graph, x: str, s: np.ndarray, group, fold, users) -> None:
    s64 = s.astype(np.float64)
    if fold is not None and fold[0] == "norm":
        others = [u for u in users[x] if u.kind != "linear"]
        fold_scales(g, g, fold[1], x, s, group, others)  # reads the weights as folded so far
        return
    for u in group:
        w = np.asarray(g.weights[u.inputs[1]], np.float64)
        g.set_weight(g.untie(u.name, u.inputs[1]), (w * s64[:, None]).astype(np.float32))
    if fold is not None:  # divide the producing linear's output columns (and bias) by s
        prev = fold[1]
        w = np.asarray(g.weights[prev.inputs[1]], np.float64)
        g.set_weight(prev.inputs[1], (w / s64[None, :]).astype(np.float32))
        if len(prev.inputs) > 2 and prev.inputs[2] in g.weights:
            b = np.asarray(g.weights[prev.inputs[2]], np.float64)
            g.set_weight(prev.inputs[2], (b / s64).astype(np.float32))
        return
    inv, scaled = x + ".awq_inv_scale", x + ".awq"
    g.add_tensor(inv, s.shape, is_weight=True)
    g.weights[inv] = (1.0 / s64).astype(np.float32)
    g.add_tensor(scaled, graph.tensors[x].shape)
    g.insert_op(graph.producers()[x].name, x + ".awq_scale", "mul", [x, inv], [scaled])
    for u in group:
        g.rewire(u.name, x, scaled)
