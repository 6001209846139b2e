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
  ``2**-16`` (S16), as are the views below them;
* ``residual: rl-sat`` (PFPQuant's residual link, :mod:`hwsim.int_residual`; default ``two-step``): every
  residual ``add`` fed by a linear that only feeds it adds its skip inside that linear's accumulator. The
  linear's output becomes its exact int32 accumulator (spec ``int32`` per channel at ``s_a·s_w[c]``), the
  add gets ``attrs residual='rl-sat', accumulator=<input index>``, and a skip that is a norm output (post-LN,
  possibly through SmoothQuant/GOM's per-channel ``mul`` by ``f``) is written by the norm unit directly at
  ``s_a·s_w[c] / f_c`` in int32 (the ``mul`` output then sits at ``s_a·s_w[c]``: the skip enters the
  accumulator without a rescale). Adds whose writer is not a per-tensor/per-channel integer linear keep
  the two-step rule.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwsim.formats import get_format
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.rtn import NORM_KINDS, VIEW_KINDS
from hwsim.qspec import QuantSpec, static_scale

INTEGER_FORMATS = ("int8", "int16", "int24", "int32")
RESIDUAL_CHOICES = ("two-step", "rl-sat")


@register_step
class FixedPoint(RecipeStep):
    name = "fixed_point"
    needs = frozenset({"amax"})
    defaults = {"softmax_bits": 16, "exp": "poly", "exp_table_bits": 8, "rope_bits": 16,
                "sigmoid_table_bits": 8, "intermediate": "int16", "residual": "two-step"}

    @classmethod
    def check(cls, ck, p, path):
        for key, choices in (("softmax_bits", (8, 16)), ("rope_bits", (8, 16)), ("exp", ("poly", "table")),
                             ("intermediate", INTEGER_FORMATS), ("residual", RESIDUAL_CHOICES)):
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
        producers = graph.producers()
        for op in graph.ops:
            if op.kind == "add" and self.params_for(op.name)["residual"] == "rl-sat":
                _rl_sat(g, graph, users, producers, op)
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


def _accumulator_spec(g, linear) -> QuantSpec | None:
    """The int32 spec of ``linear``'s exact accumulator (``s_a · s_w[c]``), or None when the linear has no
    static per-tensor integer input or no per-tensor/per-channel integer weights."""
    x, w = g.tensors[linear.inputs[0]].quant, g.tensors[linear.inputs[1]].quant
    if x is None or w is None or w.codes is None or x.granularity != "tensor" or x.is_dynamic \
            or w.granularity not in ("tensor", "channel") or get_format(x.format).kind != "int" \
            or get_format(w.element_format).kind != "int":
        return None
    scale = np.asarray(x.scale, np.float64) * np.asarray(w.scale, np.float64)  # the executor's product, exactly
    return QuantSpec("int32", "channel" if scale.ndim else "tensor", axis=-1 if scale.ndim else None, scale=scale)


def _rl_sat(g, graph, users, producers, add) -> None:
    """Mark ``add`` RL-SAT (module docstring) when one input is a linear read only by it."""
    out = g.tensors[add.outputs[0]].quant
    if out is None or out.is_dynamic or np.ndim(out.scale) or get_format(out.format).kind != "int":
        return
    for i, t in enumerate(add.inputs):
        lin = producers.get(t)
        if lin is None or lin.kind != "linear" or [u.name for u in users[t]] != [add.name]:
            continue
        acc = _accumulator_spec(g, lin)
        if acc is None:
            continue
        g.set_quant(t, acc)
        k = [o.name for o in g.ops].index(add.name)
        g.ops[k] = replace(g.ops[k], attrs={**add.attrs, "residual": "rl-sat", "accumulator": i})
        _norm_skip_at_accumulator(g, graph, users, producers, add.inputs[1 - i], acc)
        return


def _norm_skip_at_accumulator(g, graph, users, producers, skip: str, acc: QuantSpec) -> None:
    """A skip that is a norm output (through an optional per-channel ``mul``) is written at the accumulator
    scale by the norm unit (int32, per channel); its other readers must be ``requant`` ops (the GEMM path)."""
    mul, src, factor = None, skip, 1.0
    p = producers.get(skip)
    if p is not None and p.kind == "mul" and p.inputs[1] in graph.weights and len(users[skip]) == 1:
        mul, src, factor = p, p.inputs[0], np.asarray(graph.weights[p.inputs[1]], np.float64)
    norm = producers.get(src)
    if norm is None or norm.kind not in NORM_KINDS or acc.granularity != "channel":
        return
    skip_reader = mul.name if mul is not None else None
    if any(u.kind != "requant" and u.name != skip_reader and u.kind != "add" for u in users[src]) \
            or sum(u.kind == "add" for u in users[src]) > (0 if mul is not None else 1):
        return
    scale = np.asarray(acc.scale, np.float64) / factor
    g.set_quant(src, QuantSpec("int32", "channel", axis=-1, scale=scale))
    if mul is not None:
        g.set_quant(skip, QuantSpec("int32", "channel", axis=-1, scale=scale * factor))
