"""FPQ (LLM-FP4, Liu et al., EMNLP 2023): per-layer search of the floating-point format and clipping maximum.

For every ``linear`` (after an ``rtn`` step has set float specs), with calibration rows ``X`` of its input
(``input_rows``) and the float output ``Y = X W``, FPQ alternates for ``rounds`` (3) rounds::

    weights:      (f_w, r_w) = argmin  Σ ||Q_a(X) Q_w(W; f_w, r_w · max|W|) − Y||²
    activations:  (f_a, r_a) = argmin  Σ ||Q_a(X; f_a, r_a · max|X|) Q_w(W) − Y||²     (over the linears
                                                                                   reading the same X)

over the formats in ``weight_formats`` (E2M1/E3M0/E1M2 for 4 bits; E4M3/E5M2 for 8) and the clipping ratios
``ratios`` of the calibrated maximum (per output channel or group for weights, keeping the rtn step's
granularity; per tensor for static activations). The exponent bias of a float format scaled by ``s`` is
``bias + log2(s)``: searching the maximum is searching the bias. The chosen weight spec and static
per-tensor activation spec are written on the graph; dynamic (per-token) activation specs are kept and only
the weights are searched. FPQ's pre-shifted per-channel exponent bias for activations is the ``fpq_shift``
step (:mod:`hwsim.ptq.fpq_shift`), which must run before ``rtn``: ``[fpq_shift, rtn, fpq]``.
"""

from __future__ import annotations

import fnmatch

import numpy as np

from hwsim.formats import get_format
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.qspec import QuantSpec, format_limit, quantize_to_spec, static_scale, weight_spec, weight_values

VIEW_KINDS = frozenset({"reshape", "transpose"})


def _float_formats(value) -> bool:
    try:
        return isinstance(value, list) and bool(value) and all(get_format(f).kind == "float" for f in value)
    except (KeyError, ValueError, TypeError):
        return False


@register_step
class FPQ(RecipeStep):
    name = "fpq"
    needs = frozenset({"input_rows", "amax"})
    defaults = {"weight_formats": ["float4_e2m1fn", "float4_e3m0", "float4_e1m2"],
                "act_formats": ["float8_e4m3fn", "float8_e5m2"],
                "ratios": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3], "rounds": 3, "match": ["*"]}

    @classmethod
    def check(cls, ck, p, path):
        for key in ("weight_formats", "act_formats"):
            if not _float_formats(p[key]):
                ck.add(f"{path}.{key}", f"expected a non-empty list of float format names, not {p[key]!r}")
        r = p["ratios"]
        if not (isinstance(r, list) and r and all(isinstance(v, (int, float)) and 0 < v <= 1 for v in r)):
            ck.add(f"{path}.ratios", f"expected a list of numbers in (0, 1], not {r!r}")
        if isinstance(p["rounds"], bool) or not isinstance(p["rounds"], int) or p["rounds"] < 1:
            ck.add(f"{path}.rounds", f"expected a positive integer, not {p['rounds']!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        groups: dict[str, list] = {}
        for op in graph.ops:
            p = self.params_for(op.name)
            spec = graph.tensors[op.inputs[1]].quant if op.kind == "linear" else None
            if spec is None or spec.codes is None or not any(fnmatch.fnmatchcase(op.name, m) for m in p["match"]):
                continue
            groups.setdefault(op.inputs[0], []).append(op)
        for x, ops in groups.items():
            stats.require(x, "input_rows")
            self._search(g, graph, x, ops, np.asarray(stats.input_rows[x], np.float64), float(stats.amax[x]))
        return g

    def _search(self, g, graph, x: str, ops: list, rows: np.ndarray, amax: float) -> None:
        p = self.params_for(ops[0].name)
        ratios = [float(r) for r in p["ratios"]]
        a_spec = graph.tensors[x].quant
        search_act = a_spec is not None and a_spec.granularity == "tensor" and a_spec.zero_point in (None, 0)
        ws = {op.name: np.asarray(graph.weights[op.inputs[1]], np.float64) for op in ops}
        ys = {name: rows @ w for name, w in ws.items()}
        wspec = {op.name: graph.tensors[op.inputs[1]].quant for op in ops}
        act = (a_spec.format, 1.0) if search_act else None
        wq = {op.name: weight_values(wspec[op.name]) for op in ops}
        for _ in range(int(p["rounds"])):
            xq = _act_values(rows, act, amax) if act else rows
            for op in ops:
                best = min(((self._weight(ws[op.name], wspec[op.name], f, r), f, r)
                            for f in p["weight_formats"] for r in ratios),
                           key=lambda c: _err(xq @ weight_values(c[0]), ys[op.name]))
                wspec[op.name] = best[0]
                wq[op.name] = weight_values(best[0])
            if search_act:
                act = min(((f, r) for f in p["act_formats"] for r in ratios),
                          key=lambda c: sum(_err(_act_values(rows, c, amax) @ wq[n], ys[n]) for n in ys))
        for op in ops:
            g.set_quant(op.inputs[1], wspec[op.name])
        if search_act:
            spec = QuantSpec(act[0], "tensor", scale=static_scale(amax * act[1], act[0]))
            for t in _view_chain(graph, x):
                g.set_quant(t, spec)

    @staticmethod
    def _weight(w: np.ndarray, spec: QuantSpec, fmt: str, ratio: float) -> QuantSpec:
        gs = spec.group_size if spec.granularity == "group" else None
        return weight_spec(w, fmt, spec.granularity, gs, clip_ratio=ratio)


def _err(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a - b) ** 2).sum())


def _act_values(rows: np.ndarray, choice: tuple, amax: float) -> np.ndarray:
    fmt, ratio = choice
    scale = static_scale(amax * ratio, fmt)
    return get_format(fmt).decode(quantize_to_spec(rows, fmt, scale)) * scale


def _view_chain(graph, tensor: str) -> list[str]:
    producers = graph.producers()
    chain = [tensor]
    while chain[-1] in producers and producers[chain[-1]].kind in VIEW_KINDS:
        chain.append(producers[chain[-1]].inputs[0])
    return chain


__all__ = ["FPQ", "format_limit"]
