"""AQAS (Lee et al., EMNLP 2023, "Enhancing computation efficiency in LLMs through weight and activation
quantization"): activation-quantization-aware per-channel scaling.

Like SmoothQuant, a norm output ``x`` read by linears is divided per input channel by
``λ_c = amax(x_c)^α / amax(W_c,:)^(1-α)`` (folded into the norm's γ/β; the linears' rows multiplied by λ; other
readers see ``x`` again through a ``mul``, :mod:`hwsim.ptq.smoothquant`). AQAS chooses α per norm by the
output error **with both quantizers in the loop**::

    α* = argmin_α  Σ_linears || Q_a(X / λ_α) · Q_w(diag(λ_α) W) − X W ||²

``Q_w`` is the weight format and granularity the recipe will use (e.g. ``dint4`` per channel), ``Q_a`` a
static per-tensor ``activations`` quantizer with ``amax = max_c amax(x_c)/λ_c``; ``X`` are the calibration
rows of ``x`` (``input_rows``). dINT's special value α is searched per layer by the ``dint_alpha`` step
(:mod:`hwsim.ptq.dint_alpha`) after ``rtn``: ``[aqas, rtn, dint_alpha]``.
"""

from __future__ import annotations

import numpy as np

from hwsim.formats import get_format
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.smoothquant import fold_scales, foldable_norms, smoothing_factors
from hwsim.qspec import quantize_to_spec, static_scale, weight_spec, weight_values


@register_step
class AQAS(RecipeStep):
    name = "aqas"
    needs = frozenset({"amax_channel", "input_rows"})
    defaults = {"weights": "int4", "granularity": "channel", "group_size": None, "activations": "int8",
                "alphas": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}

    @classmethod
    def check(cls, ck, p, path):
        for key in ("weights", "activations"):
            try:
                get_format(p[key])
            except (KeyError, ValueError, TypeError):
                ck.add(f"{path}.{key}", f"expected a format name, not {p[key]!r}")
        a = p["alphas"]
        if not (isinstance(a, list) and a and all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in a)):
            ck.add(f"{path}.alphas", f"expected a list of numbers in 0..1, not {a!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        for op, t, linears, others in foldable_norms(graph, lambda o: o.kind in ("layernorm", "rmsnorm")):
            stats.require(t, "input_rows")
            ws = [np.asarray(graph.weights[u.inputs[1]], np.float64) for u in linears]
            lam = self._best(self.params_for(op.name), np.asarray(stats.input_rows[t], np.float64),
                             np.asarray(stats.amax_channel[t], np.float64), ws)
            fold_scales(g, graph, op, t, lam, linears, others)
        return g

    @staticmethod
    def _best(p: dict, x: np.ndarray, amax: np.ndarray, ws: list) -> np.ndarray:
        ys = [x @ w for w in ws]
        gs = p["group_size"] if p["granularity"] == "group" else None
        best, best_err = None, np.inf
        for alpha in p["alphas"]:
            lam = smoothing_factors(amax, ws, float(alpha))
            lam64 = lam.astype(np.float64)
            fmt = p["activations"]
            scale = static_scale(float((amax / lam64).max()), fmt)
            xq = get_format(fmt).decode(quantize_to_spec(x / lam64, fmt, scale)) * scale
            err = sum(float(((xq @ weight_values(weight_spec(w * lam64[:, None], p["weights"], p["granularity"], gs))
                              - y) ** 2).sum()) for w, y in zip(ws, ys, strict=True))
            if err < best_err:
                best, best_err = lam, err
        return best
