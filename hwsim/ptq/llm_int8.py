"""LLM.int8() (Dettmers et al., NeurIPS 2022): mixed-precision decomposition of outlier feature columns.

For a linear ``y = x W`` whose input has calibrated outlier columns ``O = {c : maxAbs(x_c) > threshold}``
(threshold 6.0 as in the paper)::

    y = x[:, R] W[R, :]  +  x[:, O] W[O, :]          R = the regular columns

The graph carries both paths: ``select`` ops split the input's columns (one pair per input tensor, shared by
the linears reading it), the original linear keeps its name and computes the regular GEMM (``K − |O|``
rows of W), a side linear ``NAME.outlier`` computes the outlier GEMM (``|O|`` rows) and an ``add``
``NAME.merge`` writes the original output tensor. The cost model prices both GEMMs at their own K and
formats plus the gathers and the add. Quantization is left to the following ``rtn`` step: the paper's
vector-wise int8 is ``rtn: {weights: int8, granularity: channel, act_granularity: token}``; the side GEMM's
higher precision (the paper uses fp16; here int16, or a float format) comes from an override on
``*.outlier`` — ``rtn: {weights: int16, activations: int16}``. Linears without outlier columns are left as
they are. The float function of the graph is unchanged (the split is exact in real arithmetic).
"""

from __future__ import annotations

import fnmatch

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step


@register_step
class LLMInt8(RecipeStep):
    name = "llm_int8"
    needs = frozenset({"amax_channel"})
    defaults = {"threshold": 6.0, "match": ["*"]}

    @classmethod
    def check(cls, ck, p, path):
        t = p["threshold"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
            ck.add(f"{path}.threshold", f"expected a positive number, not {t!r}")
        m = p["match"]
        if not (isinstance(m, list) and all(isinstance(x, str) for x in m)):
            ck.add(f"{path}.match", f"expected a list of op-name patterns, not {m!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        split: dict[str, tuple[str, str, np.ndarray, np.ndarray]] = {}
        for op in graph.ops:
            p = self.params_for(op.name)
            if op.kind != "linear" or not any(fnmatch.fnmatchcase(op.name, m) for m in p["match"]):
                continue
            x = op.inputs[0]
            stats.require(x, "amax_channel")
            outliers = outlier_columns(stats.amax_channel[x], float(p["threshold"]))
            if outliers.size == 0 or outliers.size == graph.tensors[x].shape[-1]:
                continue
            if x not in split:
                split[x] = _split_input(g, op, x, outliers)
            _split_linear(g, graph, op, split[x])
        return g


def outlier_columns(amax_channel, threshold: float = 6.0) -> np.ndarray:
    """Indices of the input columns whose calibrated max |x| exceeds ``threshold``."""
    return np.flatnonzero(np.asarray(amax_channel) > threshold)


def _split_input(g, first_user, x: str, outliers: np.ndarray):
    k = g.tensors[x].shape[-1]
    regular = np.setdiff1d(np.arange(k), outliers)
    lead = g.tensors[x].shape[:-1]
    names = (x + ".regular", x + ".outliers")
    for name, index in zip(names, (regular, outliers), strict=True):
        g.add_tensor(name, lead + (len(index),))
        g.insert_op_before(first_user.name, name + ".select", "select", [x], [name],
                           index=tuple(int(i) for i in index))
    return names[0], names[1], regular, outliers


def _split_linear(g, graph, op, split) -> None:
    x_reg, x_out, regular, outliers = split
    w = np.asarray(graph.weights[op.inputs[1]], np.float32)
    n = w.shape[1]
    out = op.outputs[0]
    lead = graph.tensors[out].shape[:-1]
    w_reg, w_out = op.name + ".regular.weight", op.name + ".outlier.weight"
    for name, rows in ((w_reg, regular), (w_out, outliers)):
        g.add_tensor(name, (len(rows), n), is_weight=True)
        g.weights[name] = np.ascontiguousarray(w[rows])
    y_reg, y_out = out + ".regular", out + ".outlier"
    g.add_tensor(y_reg, lead + (n,))
    g.add_tensor(y_out, lead + (n,))
    i = [o.name for o in g.ops].index(op.name)
    bias = list(op.inputs[2:])
    g.ops[i] = type(op)(op.name, "linear", (x_reg, w_reg, *bias), (y_reg,), dict(op.attrs))
    g.insert_op(op.name, op.name + ".outlier", "linear", [x_out, w_out], [y_out])
    g.insert_op(op.name + ".outlier", op.name + ".merge", "add", [y_reg, y_out], [out])
