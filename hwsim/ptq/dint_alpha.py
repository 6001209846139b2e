"""Per-layer search of dINT's special value α (Lee et al., EMNLP 2023, "Enhancing computation efficiency in
large language models through weight and activation quantization"; its appendix sweeps α).

dINT replaces two codes of a b-bit integer by the denormal levels ±α (in units of the scale; α = 0.5 by
default, :class:`hwsim.formats.DintFormat`). For every ``linear`` whose weight already carries a dINT spec
(after an ``rtn`` step, typically preceded by ``aqas`` for the per-channel scales), with the calibration rows
``X`` of its input (``input_rows``) and its activation quantizer ``Q_a`` (the spec on the input tensor, so
activation quantization is in the loop)::

    α* = argmin_{α ∈ alphas}  || Q_a(X) · Q_w(W; dINT with α) − X W ||²

``Q_w`` keeps the spec's dINT reading (which codes are special), granularity and group size and re-rounds
``W`` with absmax scales; the chosen format is ``{dint}_a{α}`` (:func:`hwsim.formats.dint_with_alpha`), the
base name when α is its own. ``graph.meta['dint_alpha']`` records α* per op. Ties keep the earlier grid entry.
"""

from __future__ import annotations

import fnmatch

import numpy as np

from hwsim.formats import dint_with_alpha, get_format
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.qspec import QuantSpec, quantize_activation, weight_spec, weight_values


@register_step
class DintAlpha(RecipeStep):
    name = "dint_alpha"
    needs = frozenset({"input_rows"})
    defaults = {"alphas": [0.25, 0.375, 0.5, 0.625, 0.75], "match": ["*"]}

    @classmethod
    def check(cls, ck, p, path):
        a = p["alphas"]
        if not (isinstance(a, list) and a and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  and 0 < v < 1 for v in a)):
            ck.add(f"{path}.alphas", f"expected a non-empty list of numbers strictly between 0 and 1, not {a!r}")
        m = p["match"]
        if not (isinstance(m, list) and m and all(isinstance(v, str) for v in m)):
            ck.add(f"{path}.match", f"expected a non-empty list of op-name patterns, not {m!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        chosen = {}
        for op in graph.ops:
            spec = graph.tensors[op.inputs[1]].quant if op.kind == "linear" else None
            p = self.params_for(op.name)
            if (spec is None or spec.codes is None or get_format(spec.format).kind != "dint"
                    or not any(fnmatch.fnmatchcase(op.name, m) for m in p["match"])):
                continue
            stats.require(op.inputs[0], "input_rows")
            rows = np.asarray(stats.input_rows[op.inputs[0]], np.float64)
            w = np.asarray(graph.weights[op.inputs[1]], np.float64)
            best, alpha = best_alpha(rows, graph.tensors[op.inputs[0]].quant, w, spec, p["alphas"])
            g.set_quant(op.inputs[1], best)
            chosen[op.name] = alpha
        g.meta["dint_alpha"] = chosen
        return g


def best_alpha(rows: np.ndarray, a_spec: QuantSpec | None, w: np.ndarray, spec: QuantSpec,
               alphas) -> tuple[QuantSpec, float]:
    """The weight spec (and its α) minimising the layer output error with ``a_spec`` in the loop.

    Parameters
    ----------
    rows : ndarray [M, K]
        Calibration rows of the linear's input (real values).
    a_spec : QuantSpec or None
        The input's activation spec (None: float activations).
    w : ndarray [K, N]
        Float weight (``y = x @ w``).
    spec : QuantSpec
        The current dINT weight spec (its reading, granularity and group size are kept).
    alphas : sequence of float
        Candidate special values (units of the scale).
    """
    xq = quantize_activation(rows, a_spec).real() if a_spec is not None else rows
    y = rows @ w
    base = get_format(spec.format).name.partition("_a")[0]
    gs = spec.group_size if spec.granularity == "group" else None
    best, best_err, best_alpha_ = None, np.inf, None
    for alpha in alphas:
        cand = weight_spec(w, dint_with_alpha(base, float(alpha)).name, spec.granularity, gs)
        err = float(((xq @ weight_values(cand) - y) ** 2).sum())
        if err < best_err:
            best, best_err, best_alpha_ = cand, err, float(alpha)
    return best, best_alpha_
