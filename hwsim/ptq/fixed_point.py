"""``fixed_point``: switch a quantized graph to integer-only execution (PFPQuant-style), after ``rtn``.

The step writes the contract into the graph; the integer executor reads it:

* ``graph.meta['fixed_point']`` = the step's parameters (softmax output bits ``S``, exponential unit,
  RoPE table bits ``R``, sigmoid table bits). With it, :class:`hwsim.int_executor.IntegerExecutor` runs
  softmax / GELU / SiLU / SwiGLU / RoPE / mean pooling on the integer kernels
  (:mod:`hwsim.int_softmax`, :mod:`hwsim.int_activations`, :mod:`hwsim.int_rope`, :mod:`hwsim.int_pool`)
  and raises, naming the op, when any op after the embedding lookup would compute in float;
* every GEMM output without a spec (a float epilogue feeding softmax, GELU, SiLU, RoPE, a view of a
  GEMM operand, or the graph output) gets the spec of the first quantized view below it, else a static
  per-tensor ``intermediate`` spec (default int16, ``scale = amax / 32767``), as does every view below it;
* every per-token (dynamic) spec becomes static per tensor in the same format (a per-token scale is a
  run-time float division);
* softmax outputs become unsigned Q0.S probabilities: ``uint8`` at ``2**-8`` (S8) or ``uint16`` at
  ``2**-16`` (S16), as are the views below them.
"""

from __future__ import annotations

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.rtn import VIEW_KINDS
from hwsim.qspec import QuantSpec, static_scale

INTEGER_FORMATS = ("int8", "int16", "int24", "int32")


@register_step
class FixedPoint(RecipeStep):
    name = "fixed_point"
    needs = frozenset({"amax"})
    defaults = {"softmax_bits": 16, "exp": "poly", "exp_table_bits": 8, "rope_bits": 16,
                "sigmoid_table_bits": 8, "intermediate": "int16"}

    @classmethod
    def check(cls, ck, p, path):
        for key, choices in (("softmax_bits", (8, 16)), ("rope_bits", (8, 16)), ("exp", ("poly", "table")),
                             ("intermediate", INTEGER_FORMATS)):
            if p[key] not in choices:
                ck.add(f"{path}.{key}", f"expected one of {list(choices)}, not {p[key]!r}")
        for key, hi in (("exp_table_bits", 12), ("sigmoid_table_bits", 16)):
            v = p[key]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
                ck.add(f"{path}.{key}", f"expected an integer in 1..{hi}, not {v!r}")

    def apply(self, graph, stats):
        g = graph.edit()
        g.meta["fixed_point"] = dict(self.params)
        users = graph.consumers()
        for name in graph.tensors:
            q = g.tensors[name].quant
            if q is not None and q.is_dynamic:
                g.set_quant(name, self._static(stats, name, q.format))
        for op in graph.ops:
            t = op.outputs[0]
            if op.kind in ("linear", "matmul") and g.tensors[t].quant is None:
                below = _spec_below(g, users, t)
                spec = below or self._static(stats, t, self.params_for(op.name)["intermediate"])
                _set_down(g, users, t, spec)
            elif op.kind == "softmax":
                bits = int(self.params_for(op.name)["softmax_bits"])
                _set_down(g, users, t, QuantSpec(f"uint{bits}", "tensor", scale=np.asarray(2.0**-bits)))
        return g

    @staticmethod
    def _static(stats, tensor: str, fmt: str) -> QuantSpec:
        stats.require(tensor, "amax")
        return QuantSpec(fmt, "tensor", scale=static_scale(float(stats.amax[tensor]), fmt))


def _spec_below(g, users, tensor: str):
    """The first spec on the chain of views below ``tensor`` (a GEMM operand's), else None."""
    for u in users.get(tensor, []):
        if u.kind in VIEW_KINDS:
            below = g.tensors[u.outputs[0]].quant or _spec_below(g, users, u.outputs[0])
            if below is not None:
                return below
    return None


def _set_down(g, users, tensor: str, spec: QuantSpec) -> None:
    """``spec`` on ``tensor`` and on the views below it."""
    g.set_quant(tensor, spec)
    for u in users.get(tensor, []):
        if u.kind in VIEW_KINDS:
            _set_down(g, users, u.outputs[0], spec)
