"""PFPQuant GOM: global outlier mitigation of the norm inputs (E-LAE / MCOM) with ORI-LN, plus data shifting.

From PFPQuant's GOM (building on FPTQ's logarithmic activation equalization, LAE). For every residual tensor
``x`` read by a norm (the output of a residual ``add``), with ``m_c = maxAbs(x_c)`` from calibration::

    E-LAE:  λ_c = [ m_c / log2(2 + m_c) ]^α
    MCOM:   λ_c = [ (β + m_c) / log2(2 + median_c(m_c)) ]^α          (median over the channel maxima)

clipped to ``λ_c >= 1`` (the ORI-LN unit's λ codes are >= 1: channels are only compressed). The graph then
carries ``x / λ``: a linear writing the residual has its weight columns and bias divided by λ, and the skip
input of the add (a previous residual tensor scaled by ``λ'``, or a norm / embedding output) is read through
an inserted ``mul`` by ``λ'/λ`` (a per-channel rescale of codes in the integer executor). The norm gets the
attribute ``ori_lambda = λ`` and multiplies λ back inside its statistics and γ (ORI-LN,
:func:`hwsim.layernorm.calibrate_norm` ``lam=``), so the float function is unchanged while a static
per-tensor quantization of the norm input sees channel maxima on a log scale.

``ori_ln: false`` (the "omit ORI-LN" ablation): the residual stream still carries ``x / λ``, but the norm is
the vanilla integer unit, so each norm reads the stream through an inserted ``mul`` by λ (a per-channel
rescale of codes) and ``requant`` (to the norm input's own static per-tensor int16 spec, set by ``rtn``):
the norm's input quantization sees the outlier channels again.

Data shifting (``shift: true``): a norm output ``h`` read only by linears is shifted per channel by
``δ_c = −(max_c + min_c)/2`` (symmetric ranges; limited to half the largest half-range so β stays an int16
zero point of the norm unit): the norm's β becomes ``β + δ`` (an RMSNorm gets a β input)
and every reading linear's bias ``B − δW``. Norm outputs with other readers (post-LN residual paths) are
not shifted.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step

NORMS = frozenset({"layernorm", "rmsnorm"})


def elae_lambda(amax, alpha: float) -> np.ndarray:
    """E-LAE ``λ_c = [m_c / log2(2 + m_c)]^α``, clipped to >= 1."""
    m = np.asarray(amax, np.float64)
    return np.maximum((m / np.log2(2.0 + m)) ** alpha, 1.0)


def mcom_lambda(amax, alpha: float, beta: float) -> np.ndarray:
    """MCOM ``λ_c = [(β + m_c) / log2(2 + median(m))]^α``, clipped to >= 1."""
    m = np.asarray(amax, np.float64)
    return np.maximum(((beta + m) / np.log2(2.0 + np.median(m))) ** alpha, 1.0)


@register_step
class GOM(RecipeStep):
    name = "gom"
    needs = frozenset({"amax_channel", "minmax_channel"})
    defaults = {"method": "mcom", "alpha": 1.0, "beta": 0.0, "shift": True, "ori_ln": True}

    @classmethod
    def check(cls, ck, p, path):
        if p["method"] not in ("mcom", "elae"):
            ck.add(f"{path}.method", f"expected 'mcom' or 'elae', not {p['method']!r}")
        for key, lo in (("alpha", 0.0), ("beta", 0.0)):
            v = p[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= 1e6:
                ck.add(f"{path}.{key}", f"expected a number >= {lo}, not {v!r}")
        for key in ("shift", "ori_ln"):
            ck.boolean(p, key, path, p[key])

    def apply(self, graph, stats):
        g = graph.edit()
        lam = self._lambdas(graph, stats)
        _scale_residuals(g, graph, lam, ori_ln=self.params["ori_ln"])
        if self.params["shift"]:
            _shift(g, graph, stats)
        return g

    def _lambdas(self, graph, stats) -> dict:
        """λ per residual tensor (an ``add`` output whose readers are norms and adds)."""
        users, producers = graph.consumers(), graph.producers()
        out = {}
        for op in graph.ops:
            if op.kind not in NORMS:
                continue
            t = op.inputs[0]
            prod = producers.get(t)
            if prod is None or prod.kind != "add" or any(u.kind not in NORMS | {"add"} for u in users[t]):
                continue
            p = self.params_for(op.name)
            stats.require(t, "amax_channel")
            m = stats.amax_channel[t]
            out[t] = (elae_lambda(m, p["alpha"]) if p["method"] == "elae"
                      else mcom_lambda(m, p["alpha"], p["beta"])).astype(np.float32)
        return out


def _scale_residuals(g, graph, lam: dict, ori_ln: bool = True) -> None:
    users, producers = graph.consumers(), graph.producers()
    for t, lt in lam.items():
        add = producers[t]
        lt64 = lt.astype(np.float64)
        for x in add.inputs:
            prod = producers.get(x)
            writer = prod is not None and prod.kind == "linear" and len(users[x]) == 1
            if writer:
                w = np.asarray(graph.weights[prod.inputs[1]], np.float64) / lt64[None, :]
                g.set_weight(prod.inputs[1], w.astype(np.float32))
                g.set_quant(prod.inputs[1], None)
                if len(prod.inputs) > 2:
                    b = np.asarray(graph.weights[prod.inputs[2]], np.float64) / lt64
                    g.set_weight(prod.inputs[2], b.astype(np.float32))
                continue
            prev = lam.get(x, np.ones_like(lt)).astype(np.float64)
            factor, name = (prev / lt64).astype(np.float32), f"{add.name}.gom_skip"
            g.add_tensor(name + ".factor", factor.shape, is_weight=True)
            g.weights[name + ".factor"] = factor
            g.add_tensor(name, graph.tensors[x].shape)
            g.insert_op_before(add.name, name, "mul", [x, name + ".factor"], [name])
            g.rewire(add.name, x, name)
        for u in users[t]:
            if u.kind in NORMS and ori_ln:
                _replace_op(g, u.name, attrs={**u.attrs, "ori_lambda": lt})
            elif u.kind in NORMS:
                _expand_before(g, graph, u, t, lt)


def _expand_before(g, graph, norm, t: str, lam) -> None:
    """Without ORI-LN: ``norm`` reads ``requant(t · λ)`` (the stream expanded back) instead of ``t``."""
    name = f"{norm.name}.gom_expand"
    g.add_tensor(name + ".factor", lam.shape, is_weight=True)
    g.weights[name + ".factor"] = lam
    g.add_tensor(name, graph.tensors[t].shape)
    g.add_tensor(name + ".q", graph.tensors[t].shape)
    g.insert_op_before(norm.name, name, "mul", [t, name + ".factor"], [name])
    g.insert_op_before(norm.name, name + ".requant", "requant", [name], [name + ".q"])
    g.rewire(norm.name, t, name + ".q")


def shift_amounts(lo, hi) -> np.ndarray:
    """``δ_c = −(max_c + min_c)/2``, limited to half the largest shifted half-range ``A = max_c (max_c−min_c)/2``
    so the norm unit's β (an int16-stage zero point at the output's scale) stays representable."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    limit = 0.5 * float(np.max((hi - lo) / 2.0))
    return np.clip(-(hi + lo) / 2.0, -limit, limit)


def _replace_op(g, name: str, **changes) -> None:
    i = [o.name for o in g.ops].index(name)
    g.ops[i] = replace(g.ops[i], **changes)


def _shift(g, graph, stats) -> None:
    users = graph.consumers()
    for op in graph.ops:
        h = op.outputs[0]
        readers = users.get(h, [])
        if op.kind not in NORMS or not readers or any(u.kind != "linear" or u.inputs[0] != h for u in readers):
            continue
        stats.require(h, "minmax_channel")
        delta = shift_amounts(stats.min_channel[h], stats.max_channel[h])
        current = g.op(op.name)
        if len(current.inputs) > 2:
            g.set_weight(current.inputs[2], (np.asarray(g.weights[current.inputs[2]], np.float64)
                                             + delta).astype(np.float32))
        else:
            name = op.name + ".shift_beta"
            g.add_tensor(name, delta.shape, is_weight=True)
            g.weights[name] = delta.astype(np.float32)
            _replace_op(g, op.name, inputs=current.inputs + (name,))
        for u in (g.op(r.name) for r in readers):
            w = np.asarray(g.weights[u.inputs[1]], np.float64)
            bias = -(delta @ w)
            if len(u.inputs) > 2:
                g.set_weight(u.inputs[2], (np.asarray(g.weights[u.inputs[2]], np.float64) + bias).astype(np.float32))
            else:
                name = u.name + ".shift_bias"
                g.add_tensor(name, bias.shape, is_weight=True)
                g.weights[name] = bias.astype(np.float32)
                _replace_op(g, u.name, inputs=u.inputs + (name,))
