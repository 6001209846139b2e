"""RTN: round-to-nearest weights and static/dynamic activation specs for every tensor of a graph.

Weights (per ``linear``): ``weight_spec`` of the chosen format and granularity (tensor, channel along the
output columns, group along K, MX blocks). Clipping: ``minmax`` (scale from max |w|) or ``mse`` (per column
or group, the ratio ``r`` in ``1.0, 0.95, ..., 0.5`` of max |w| minimising the squared rounding error of that
column or group). ``weights: keep`` keeps the specs a graph already carries (GGUF blocks, checkpoints);
``weights: float`` leaves the linear unquantized.

Activations (``activations: FORMAT``), from the calibration statistics of the float graph:

* inputs of ``linear``/``matmul``: ``FORMAT`` per tensor, ``scale = amax / max(FORMAT)`` (``amax`` from
  min/max or the ``percentile`` of |x|), propagated up through reshape/transpose to the producing op; with
  ``act_granularity: token`` a linear's own input is quantized per row at run time instead (dynamic);
* softmax outputs: ``uint8`` with scale 1/255 (integer ``FORMAT``) or ``FORMAT`` with scale ``1/max``;
* outputs of the kinds in ``unsigned`` (default GELU, whose minimum is −0.17): asymmetric unsigned codes
  over the calibrated ``[min, max]``;
* the residual stream (outputs of ``add`` and inputs of norms): ``residual`` format (default ``int16``) per
  tensor (``amax / 32767``) or per token (``residual_granularity: token``);
* a linear whose only consumers are ``add`` ops requantizes straight into the residual stream; a GEMM whose
  output feeds a float op (GELU, softmax, SiLU, RoPE) keeps a float epilogue (no output spec);
* a norm output feeding GEMMs and the residual path is held at ``residual`` precision (the norm unit's
  int16 stage, scale ``s_out * max(FORMAT) / 32767``) and a ``requant`` op is inserted for the GEMMs.

``act_granularity: auto`` and ``residual_granularity: auto`` mean ``token`` for LLM graphs
(``graph.meta['family'] == 'llm'``, whose massive BOS activations defeat static scales) and ``tensor``
otherwise.
"""

from __future__ import annotations

import numpy as np

from hwsim.formats import get_format
from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.qspec import QuantSpec, asymmetric_params, format_limit, static_scale, weight_spec

GRANULARITY_CHOICES = ("tensor", "channel", "group")
CLIP_RATIOS = tuple(np.round(np.linspace(1.0, 0.5, 11), 3))
#: Op kinds computed in float whose GEMM inputs keep a float epilogue.
FLOAT_CONSUMERS = frozenset({"gelu", "softmax", "silu", "swiglu", "rope"})
VIEW_KINDS = frozenset({"reshape", "transpose"})
NORM_KINDS = frozenset({"layernorm", "rmsnorm"})


def _known_format(value) -> bool:
    try:
        get_format(value)
    except (KeyError, ValueError, TypeError):
        return False
    return True


@register_step
class RTN(RecipeStep):
    name = "rtn"
    needs = frozenset({"amax", "minmax"})
    defaults = {"weights": "int8", "granularity": "channel", "group_size": None, "symmetric": True,
                "clip": "minmax", "activations": "int8", "act_granularity": "auto",
                "calibration": "minmax", "percentile": 99.99, "residual": "int16",
                "residual_granularity": "auto", "unsigned": ["gelu"]}

    @classmethod
    def check(cls, ck, p, path):
        w = p["weights"]
        if w not in ("keep", "float") and not _known_format(w):
            ck.add(f"{path}.weights", f"expected a format name, 'keep' or 'float', not {w!r}")
        if p["granularity"] not in GRANULARITY_CHOICES:
            ck.add(f"{path}.granularity", f"expected one of {list(GRANULARITY_CHOICES)}, not {p['granularity']!r}")
        if p["granularity"] == "group" and not (isinstance(p["group_size"], int) and p["group_size"] > 0):
            ck.add(f"{path}.group_size", f"expected a positive integer for group granularity, not {p['group_size']!r}")
        for key, choices in (("clip", ("minmax", "mse")), ("calibration", ("minmax", "percentile")),
                             ("act_granularity", ("auto", "tensor", "token")),
                             ("residual_granularity", ("auto", "tensor", "token"))):
            if p[key] not in choices:
                ck.add(f"{path}.{key}", f"expected one of {list(choices)}, not {p[key]!r}")
        if p["activations"] is not None and (not _known_format(p["activations"])
                                             or get_format(p["activations"]).kind == "quantile"):
            ck.add(f"{path}.activations", f"expected a format name or null (not a weight-fitted type), "
                                          f"not {p['activations']!r}")
        if p["residual"] is not None and (not _known_format(p["residual"])
                                          or get_format(p["residual"]).kind != "int"):
            ck.add(f"{path}.residual", f"expected an integer format name or null, not {p['residual']!r}")
        if not isinstance(p["percentile"], (int, float)) or not 50 <= p["percentile"] <= 100:
            ck.add(f"{path}.percentile", f"expected a number in 50..100, not {p['percentile']!r}")
        ck.boolean(p, "symmetric", path, p["symmetric"])

    def extra_needs(self) -> frozenset:
        percentile = self.params["calibration"] == "percentile" or any(
            o.get("calibration") == "percentile" for _, o in self.overrides)
        return frozenset({"percentile"}) if percentile else frozenset()

    def apply(self, graph, stats):
        g = graph.edit()
        for op in graph.ops:
            if op.kind == "linear":
                self._quantize_weight(g, op)
        if self.params["activations"] is not None:
            _ActivationPlan(self, graph, g, stats).assign()
        return g

    # -- weights ----------------------------------------------------------------------------------
    def _quantize_weight(self, g, op) -> None:
        p = self.params_for(op.name)
        name = op.inputs[1]
        if p["weights"] == "keep":
            return
        if p["weights"] == "float":
            g.set_quant(name, None)
            return
        w = np.asarray(g.weights[name], np.float64)
        gs = p["group_size"] if p["granularity"] == "group" else None
        ratio = 1.0 if p["clip"] == "minmax" else _mse_clip(w, p["weights"], p["granularity"], gs, p["symmetric"])
        g.set_quant(name, weight_spec(w, p["weights"], p["granularity"], gs, symmetric=p["symmetric"],
                                      clip_ratio=ratio))


def _mse_clip(w, fmt, granularity, group_size, symmetric) -> np.ndarray:
    """Per column (or group) clip ratio minimising the squared rounding error, expanded to ``w``'s shape."""
    from hwsim.qspec import weight_values

    if get_format(fmt).kind == "mx":
        return np.ones_like(w)
    k, n = w.shape
    gs = group_size if granularity == "group" else (k if granularity == "channel" else None)
    errors = []
    for r in CLIP_RATIOS:
        dq = weight_values(weight_spec(w, fmt, granularity, group_size, symmetric=symmetric, clip_ratio=r))
        e = (dq - w) ** 2
        errors.append(e.sum() * np.ones((1, 1)) if gs is None else e.reshape(k // gs, gs, n).sum(axis=1))
    best = np.asarray(CLIP_RATIOS)[np.argmin(np.stack(errors), axis=0)]  # [groups, N] or [1, 1]
    return np.repeat(best, gs, axis=0) if gs is not None else np.broadcast_to(best, w.shape)


class _ActivationPlan:
    """Assigns activation specs on the edited graph ``g`` from the structure of ``graph``."""

    def __init__(self, step: RTN, graph, g, stats):
        self.step, self.graph, self.g, self.stats = step, graph, g, stats
        self.users = graph.consumers()
        self.producer = graph.producers()
        llm = graph.meta.get("family") == "llm"
        self.llm = llm

    def _params(self, op_name: str) -> dict:
        return self.step.params_for(op_name)

    def _granularity(self, p: dict, key: str) -> str:
        return p[key] if p[key] != "auto" else ("token" if self.llm else "tensor")

    def _amax(self, tensor: str, p: dict) -> float:
        if p["calibration"] == "percentile":
            return self.stats.percentile(tensor, p["percentile"])
        self.stats.require(tensor, "amax")
        return float(self.stats.amax[tensor])

    def _static(self, tensor: str, p: dict, fmt: str | None = None) -> QuantSpec:
        fmt = fmt or p["activations"]
        return QuantSpec(fmt, "tensor", scale=static_scale(self._amax(tensor, p), fmt))

    def _root(self, tensor: str) -> list[str]:
        """``tensor`` and the tensors above it through views (the last one is produced by a real op)."""
        chain = [tensor]
        while chain[-1] in self.producer and self.producer[chain[-1]].kind in VIEW_KINDS:
            chain.append(self.producer[chain[-1]].inputs[0])
        return chain

    def _set_chain(self, tensor: str, spec: QuantSpec) -> None:
        for t in self._root(tensor):
            self.g.set_quant(t, spec)

    def assign(self) -> None:
        self._residual_stream()
        self._gemm_inputs()
        self._unsigned_outputs()
        self._norm_outputs()
        self._direct_residual_outputs()
        self._rescale_outputs()

    def _residual_stream(self) -> None:
        for op in self.graph.ops:
            p = self._params(op.name)
            if p["residual"] is None:
                continue
            targets = list(op.outputs) if op.kind == "add" else [op.inputs[0]] if op.kind in NORM_KINDS else []
            for t in targets:
                if self._granularity(p, "residual_granularity") == "token":
                    self.g.set_quant(t, QuantSpec(p["residual"], "token"))
                else:
                    self.g.set_quant(t, self._static(t, p, p["residual"]))

    def _gemm_inputs(self) -> None:
        for op in self.graph.ops:
            if op.kind not in ("linear", "matmul"):
                continue
            p = self._params(op.name)
            fmt = p["activations"]
            inputs = op.inputs[:1] if op.kind == "linear" else op.inputs[:2]
            for t in inputs:
                root = self._root(t)[-1]
                prod = self.producer.get(root)
                if prod is not None and prod.kind == "softmax":
                    self._set_chain(t, self._probabilities(fmt))
                elif op.kind == "linear" and self._granularity(p, "act_granularity") == "token" and (
                        prod is None or prod.kind not in NORM_KINDS):
                    self.g.set_quant(t, QuantSpec(fmt, "token"))
                else:
                    self._set_chain(t, self._static(root, p, fmt))

    @staticmethod
    def _probabilities(fmt: str) -> QuantSpec:
        spec = get_format(fmt)
        if spec.kind == "int":
            u = get_format("u" + fmt) if not fmt.startswith("u") else spec
            return QuantSpec(u.name, "tensor", scale=np.asarray(1.0 / u.hi))
        return QuantSpec(fmt, "tensor", scale=np.asarray(1.0 / format_limit(fmt)))

    def _unsigned_outputs(self) -> None:
        for op in self.graph.ops:
            p = self._params(op.name)
            fmt = p["activations"]
            spec = self.g.tensors[op.outputs[0]].quant
            if op.kind not in p["unsigned"] or spec is None or spec.granularity != "tensor" \
                    or get_format(fmt).kind != "int" or fmt.startswith("u"):
                continue
            t = op.outputs[0]
            self.stats.require(t, "minmax")
            scale, zp = asymmetric_params(self.stats.minimum[t], self.stats.maximum[t], "u" + fmt)
            self._set_chain_down(t, QuantSpec("u" + fmt, "tensor", scale=np.asarray(scale),
                                              zero_point=np.asarray(zp)))

    def _set_chain_down(self, tensor: str, spec: QuantSpec) -> None:
        """Set ``spec`` on ``tensor`` and the views below it."""
        self.g.set_quant(tensor, spec)
        for user in self.users.get(tensor, []):
            if user.kind in VIEW_KINDS:
                self._set_chain_down(user.outputs[0], spec)

    def _norm_outputs(self) -> None:
        """Post-norm tensors feeding GEMMs and the residual path: int16 stage + an inserted requant."""
        for op in self.graph.ops:
            p = self._params(op.name)
            t = op.outputs[0]
            spec = self.g.tensors[t].quant
            if op.kind not in NORM_KINDS or p["residual"] is None:
                continue
            if spec is None:  # feeds only the residual path / pooling: the norm unit's int16 output
                self.g.set_quant(t, self._static(t, p, p["residual"]))
                continue
            residual_users = [u for u in self.users.get(t, []) if u.kind not in ("linear", "matmul")]
            gemm_users = [u for u in self.users.get(t, []) if u.kind in ("linear", "matmul")]
            if not residual_users or not gemm_users:
                continue
            stage_scale = float(spec.scale) * format_limit(spec.format) / format_limit(p["residual"])
            self.g.set_quant(t, QuantSpec(p["residual"], "tensor", scale=np.asarray(stage_scale)))
            q = t + ".q"
            self.g.add_tensor(q, self.graph.tensors[t].shape, quant=spec)
            self.g.insert_op(op.name, op.name + ".requant", "requant", [t], [q])
            for u in gemm_users:
                self.g.rewire(u.name, t, q)

    def _direct_residual_outputs(self) -> None:
        """A GEMM whose only consumers are adds requantizes straight into the first add's output spec."""
        for op in self.graph.ops:
            if op.kind not in ("linear", "matmul"):
                continue
            users = self.users.get(op.outputs[0], [])
            if users and all(u.kind == "add" for u in users) and self.g.tensors[op.outputs[0]].quant is None:
                out = self.g.tensors[users[0].outputs[0]].quant
                if out is not None and not out.is_dynamic:
                    self.g.set_quant(op.outputs[0], out)

    def _rescale_outputs(self) -> None:
        """``mul`` by a constant vector (SmoothQuant's un-smoothing) on codes: the scale times the vector."""
        for op in self.graph.ops:
            if op.kind != "mul" or op.inputs[1] not in self.graph.weights:
                continue
            src = self.g.tensors[op.inputs[0]].quant
            if src is None or src.granularity != "tensor":
                continue
            lam = np.asarray(self.graph.weights[op.inputs[1]], np.float64)
            self.g.set_quant(op.outputs[0], src.with_(granularity="channel", axis=-1,
                                                      scale=np.asarray(src.scale, np.float64) * lam))
