"""FPQ's pre-shifted per-channel exponent bias for activations (LLM-FP4, Liu et al., EMNLP 2023, §4.2).

A floating-point activation format with exponent bias ``b`` represents ``x`` as ``2^-b · (1.m) · 2^e``;
a per-channel bias ``b_c = b̃ + ρ_c`` with integer ``ρ_c`` is a per-channel scale restricted to powers of
two. LLM-FP4 keeps the activation quantizer per tensor (``b̃``) and re-parameterises the integer shifts
into the weights. Here, for a norm output ``x`` read by linears (the foldable places of
:func:`hwsim.ptq.smoothquant.foldable_norms`), from the calibrated channel maxima ``amax_c`` and
``M = max_c amax_c``::

    ρ_c = max( ceil(log2(amax_c / M)), -max_shift )          (integer, ≤ 0; the widest channel has ρ = 0)
    x'_c = x_c · 2^-ρ_c         (norm γ_c, β_c multiplied by 2^-ρ_c: channel ranges land in (M/2, M])
    W'[c, :] = W[c, :] · 2^ρ_c  (every consuming linear; other readers see x through a ``mul`` by 2^ρ)

so ``x' W' = x W``: the float model is unchanged (power-of-two factors are exact), the per-tensor amax stays
``M``, and a channel of small range is quantized with its own exponent (finer steps) by the unchanged
per-tensor activation quantizer. It runs before ``rtn`` (which then calibrates the shifted graph) and the
``fpq`` search: ``[fpq_shift, rtn, fpq]``. ``graph.meta['fpq_shift']`` records the shifts per norm.
``max_shift`` bounds the shift of nearly dead channels (default 16, i.e. at most ×2^16).
"""

from __future__ import annotations

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.smoothquant import fold_scales, foldable_norms


@register_step
class FPQShift(RecipeStep):
    name = "fpq_shift"
    needs = frozenset({"amax_channel"})
    defaults = {"producers": ["layernorm", "rmsnorm"], "max_shift": 16}

    @classmethod
    def check(cls, ck, p, path):
        m = p["max_shift"]
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= 64:
            ck.add(f"{path}.max_shift", f"expected an integer in 0..64, not {m!r}")
        prods = p["producers"]
        if not (isinstance(prods, list) and all(k in ("layernorm", "rmsnorm") for k in prods)):
            ck.add(f"{path}.producers", f"expected a list of 'layernorm'/'rmsnorm', not {prods!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        shifts = {}
        for op, t, linears, others in foldable_norms(graph, lambda o: o.kind in self.params_for(o.name)["producers"]):
            p = self.params_for(op.name)
            stats.require(t, "amax_channel")
            rho = exponent_shifts(stats.amax_channel[t], p["max_shift"])
            # fold_scales divides x by λ and multiplies W rows by λ: λ = 2^ρ
            fold_scales(g, graph, op, t, np.ldexp(np.float32(1.0), rho).astype(np.float32), linears, others)
            shifts[op.name] = rho.tolist()
        g.meta["fpq_shift"] = shifts
        return g


def exponent_shifts(amax_channel, max_shift: int) -> np.ndarray:
    """Integer shifts ``ρ_c = max(ceil(log2(amax_c / max amax)), -max_shift)`` (≤ 0; int64)."""
    amax = np.asarray(amax_channel, np.float64)
    top = float(amax.max())
    if top <= 0:
        return np.zeros(amax.shape, np.int64)
    ratio = np.maximum(amax / top, 2.0**-max_shift)
    return np.maximum(np.ceil(np.log2(ratio)), -max_shift).astype(np.int64)
