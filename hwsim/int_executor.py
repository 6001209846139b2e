"""The integer executor: runs any quantized :class:`hwsim.graph.Graph` bit-exactly from its QuantSpecs.

Every decision comes from the graph: a tensor with a :class:`hwsim.qspec.QuantSpec` is held as codes
(:class:`hwsim.qspec.QTensor`), a tensor without one as float64. Each method named after an op kind is that
kind's numerics kernel (the registry :data:`KERNELS`); each records how it computed (``numerics``:
``integer``, ``lut``, ``rescale``, ``view``, ``lookup`` or ``float``) so the per-op table names what is still
float.

Kernels:

* ``linear`` / ``matmul``: :func:`hwsim.qlinear.quantized_linear` (exact accumulators, bias in the
  accumulator, requant or float epilogue to the output spec); ``matmul`` per leading index with the second
  operand as a per-tensor "weight"; ``attrs['scale']`` is folded into the epilogue. Float inputs are first
  quantized with their tensor's spec (the rounding rule of :func:`hwsim.qspec.quantize_to_spec`).
* ``add``: each quantized input is requantized into the output spec (per-channel multipliers allowed) and
  the integers summed, saturating to the output format; a dynamic (per-token) output sums in float and
  quantizes per row. With ``attrs['residual'] == 'rl-sat'`` (the ``fixed_point`` step's ``residual:
  rl-sat``): :func:`hwsim.int_residual.rl_sat_add`, the skip added inside the writer GEMM's int32
  accumulator (input ``attrs['accumulator']``) and one requant to the output spec.
* ``layernorm`` / ``rmsnorm``: :func:`hwsim.layernorm.integer_norm` on the integer input (any static or
  per-token scale: the unit is scale invariant) to the output spec; an ``ori_lambda`` attribute (PFPQuant
  ORI-LN, input ``x / λ``) goes to :func:`hwsim.layernorm.calibrate_norm` as ``lam`` (the calibrated
  constants are kept with the output spec); with ``norm_reference=True`` the error vs the float norm of
  the same input is recorded in :attr:`IntegerExecutor.norm_stats`.
* ``requant``: the requant unit between two static specs. ``quantize``/``dequantize``: to/from codes.
* ``gelu``/``relu`` on codes: a table over every input code (exact). ``kv_write``: the new keys/values in
  the cache's format (prefill into an empty cache; a graph without its past cache cannot append).
* ``hadamard`` (online rotation) on per-tensor integer codes without zero point: the ±1 transform of the
  integers (exact int64 accumulators) requantized with scale ``s / sqrt(n)`` to the output spec; float input
  or a float output: float64 on the real values.
* ``select`` (columns of the last axis): moves codes; a per-channel scale or zero point is selected with them.
* ``mul`` by a constant vector on codes: the scale is rescaled per channel (no arithmetic on codes).
* ``softmax``, ``silu``, ``swiglu``, ``rope``, ``gelu`` on float input, ``mean_pool``: float64 on the
  real values (named ``float``), the result encoded to the output spec if there is one.
* ``embedding``: table lookup; ``reshape``/``transpose``: move codes.

Fixed-point mode (``graph.meta['fixed_point']``, the ``fixed_point`` recipe step): softmax, GELU, SiLU,
SwiGLU, RoPE and mean pooling run on the integer kernels of :mod:`hwsim.int_softmax`,
:mod:`hwsim.int_activations`, :mod:`hwsim.int_rope` and :mod:`hwsim.int_pool` at the widths the meta
names; any op that would compute in float after the embedding lookup (a float epilogue, a dynamic
per-token scale, a float input, ``dequantize``) raises :class:`FixedPointError` naming the op.
"""

from __future__ import annotations

import numpy as np

from hwsim.float_executor import (
    causal_keep,
    embed,
    gelu,
    mask_bias,
    ori_input,
    query_period,
    reshape_dims,
    rope,
    silu,
    softmax,
)
from hwsim.formats import get_format
from hwsim.int_activations import integer_gelu, integer_silu, integer_swiglu
from hwsim.int_pool import integer_mean_pool
from hwsim.int_residual import rl_sat_add
from hwsim.int_rope import integer_rope
from hwsim.int_softmax import calibrate_softmax, integer_softmax
from hwsim.layernorm import calibrate_norm, float_norm, integer_norm
from hwsim.qlinear import quantized_linear, quantized_matmul, requant_accumulator, requantize_tensor
from hwsim.qspec import QTensor, QuantSpec, quantize_activation, quantize_to_spec, weight_values


def _norm_params(op, out: QuantSpec, in_fmt, gamma, beta):
    """The norm unit's calibrated constants for ``op`` (:func:`hwsim.layernorm.calibrate_norm`), kept in the
    output spec's cache under the op, the input format and the contents of γ, β and λ (a pass may give a
    norm new γ while keeping its output spec)."""
    lam = op.attrs.get("ori_lambda")
    key = ("int_norm_params", op.name, op.kind, in_fmt.name,
           *(None if v is None else np.asarray(v, np.float64).tobytes() for v in (gamma, beta, lam)))
    if key not in out.cache:
        scale = np.asarray(out.scale, np.float64)  # per channel: RL-SAT's skip at the accumulator scale
        out.cache[key] = calibrate_norm(op.kind, gamma, beta, in_absmax=float(in_fmt.hi),
                                        out_scale=scale if scale.ndim else float(scale), out_format=out.format,
                                        zero_point=int(out.zero_point or 0), lam=lam)
    return out.cache[key]


def _real(x) -> np.ndarray:
    return x.real() if isinstance(x, QTensor) else np.asarray(x, np.float64)


class IntegerExecutor:
    """Executes a quantized graph (see the module docstring).

    Parameters
    ----------
    graph : Graph
        A frozen graph whose tensors carry QuantSpecs (linear weights must carry codes).

    Attributes
    ----------
    numerics : dict
        ``{op name: "integer" | "lut" | "float" | ...}`` of the last run.
    norm_stats : dict
        Per norm op: ``newton_iterations``, ``x_saturated`` and (``norm_reference=True``) ``rel_error`` and
        ``max_error_lsb`` of the integer unit vs float of the same input (last call); per RL-SAT residual
        add: ``acc_saturated``.
    fixed_point : dict or None
        ``graph.meta['fixed_point']`` (set by the ``fixed_point`` recipe step): integer-only mode, where
        softmax/GELU/SiLU/SwiGLU/RoPE/mean pooling run on the integer kernels and any op that would compute
        in float raises :class:`FixedPointError` naming it.
    """

    def __init__(self, graph, *, norm_reference: bool = False):
        if not graph.frozen:
            raise ValueError(f"graph {graph.name!r} must be frozen before execution (call graph.freeze())")
        self.graph = graph
        self.norm_reference = norm_reference
        self.numerics: dict[str, str] = {}
        self.norm_stats: dict[str, dict] = {}
        self.fixed_point: dict | None = graph.meta.get("fixed_point")

    def run(self, feeds: dict, *, observer=None, keep: bool = False) -> dict:
        """Execute on ``feeds``; returns ``{output name: value}`` with quantized outputs dequantized."""
        from hwsim.float_executor import run_graph

        out = run_graph(self.graph, feeds, self, observer=observer, keep=keep)
        return out if keep else {k: _real(v) for k, v in out.items()}

    # -- helpers --------------------------------------------------------------------------------------
    def _spec(self, tensor: str) -> QuantSpec | None:
        return self.graph.tensors[tensor].quant

    def _as_q(self, tensor: str, x) -> QTensor | None:
        """``x`` as codes of ``tensor``'s spec (quantizing float input), or None for float tensors."""
        if isinstance(x, QTensor):
            return x
        if self.fixed_point is not None:
            raise FixedPointError(f"input {tensor!r} arrives in float in fixed-point mode (graph {self.graph.name!r})")
        spec = self._spec(tensor)
        return None if spec is None else quantize_activation(x, spec)

    def _note(self, op, how: str):
        if how == "float" and self.fixed_point is not None:
            raise FixedPointError(f"op {op.name!r} ({op.kind}) would execute in float in fixed-point mode "
                                  f"(graph {self.graph.name!r}); give its inputs and output static integer specs")
        self.numerics[op.name] = how

    def _int_input(self, op, tensor: str, x, what: str = "input") -> tuple[np.ndarray, float, int]:
        """Fixed-point mode: ``(integer values, scale, zero point)`` of a per-tensor integer QTensor."""
        if not isinstance(x, QTensor) or get_format(x.fmt).kind != "int" or np.ndim(x.scale) \
                or np.ndim(x.zero_point):
            got = x.fmt if isinstance(x, QTensor) else "float"
            raise FixedPointError(f"op {op.name!r} ({op.kind}): the integer kernel needs per-tensor integer "
                                  f"codes on its {what} {tensor!r}, not {got}")
        return get_format(x.fmt).code_to_int(x.codes), float(x.scale), int(x.zero_point)

    def _int_output(self, op, per_channel: bool = False) -> QuantSpec:
        out = self._spec(op.outputs[0])
        if out is None or out.is_dynamic or get_format(out.format).kind != "int" \
                or (np.ndim(out.scale) and not per_channel):
            raise FixedPointError(f"op {op.name!r} ({op.kind}): fixed-point mode needs a static per-tensor "
                                  f"integer output spec on {op.outputs[0]!r}, not "
                                  f"{out.describe() if out is not None else 'none (float)'}")
        return out

    @staticmethod
    def _q(codes, out: QuantSpec) -> QTensor:
        return QTensor(codes, out.format, np.asarray(out.scale, np.float64), int(out.zero_point or 0))

    def _finish(self, op, y: np.ndarray):
        """Real result ``y`` of a float kernel to the output spec (if any)."""
        spec = self._spec(op.outputs[0])
        if spec is None:
            return y
        return quantize_activation(y, spec)

    # -- GEMMs ----------------------------------------------------------------------------------------
    def linear(self, op, x, w, b=None):
        w_spec = self._spec(op.inputs[1])
        xq = self._as_q(op.inputs[0], x)
        if w_spec is None or w_spec.codes is None or xq is None:
            self._note(op, "float")
            weights = w if w_spec is None or w_spec.codes is None else weight_values(w_spec)
            y = _real(x) @ np.asarray(weights, np.float64)
            return self._finish(op, y if b is None else y + b)
        if self.fixed_point is not None:
            self._int_output(op, per_channel=True)  # an RL-SAT accumulator output is per channel
        lead = xq.codes.shape[:-1]
        x2 = QTensor(xq.codes.reshape(-1, xq.codes.shape[-1]), xq.fmt, _rows(xq.scale, lead), xq.zero_point)
        out = quantized_linear(x2, w_spec, b, self._spec(op.outputs[0]))
        self._note(op, "integer")
        return _reshape_out(out, lead)

    def matmul(self, op, a, b):
        qa, qb = self._as_q(op.inputs[0], a), self._as_q(op.inputs[1], b)
        scale = float(op.attrs.get("scale", 1.0))
        if qa is None or qb is None:
            self._note(op, "float")
            return self._finish(op, np.matmul(_real(a), _real(b)) * scale)
        if np.ndim(qb.scale) or np.ndim(qb.zero_point):
            raise ValueError(f"op {op.name!r}: the second matmul operand needs a per-tensor scale, "
                             f"not {self._spec(op.inputs[1]).describe()}")
        if self.fixed_point is not None:
            self._int_output(op)
        self._note(op, "integer")
        return quantized_matmul(qa, qb, self._spec(op.outputs[0]), product_scale=scale)

    # -- residual and normalisation -------------------------------------------------------------------
    def add(self, op, a, b):
        if op.attrs.get("residual") == "rl-sat":
            return self._rl_sat_add(op, a, b)
        out = self._spec(op.outputs[0])
        if out is None or out.is_dynamic or get_format(out.format).kind != "int":
            self._note(op, "float")
            y = _real(a) + _real(b)
            return y if out is None else quantize_activation(y, out)
        fmt = get_format(out.format)
        total = np.zeros((), np.int64)
        for name, x in zip(op.inputs, (a, b), strict=True):
            if not isinstance(x, QTensor):
                x = self._as_q(name, x) if self.fixed_point is not None else \
                    quantize_activation(_real(x), self._spec(name) or out)
            r = x if _same_spec(x, out) else requantize_tensor(x, out)
            total = total + fmt.code_to_int(r.codes) - np.asarray(out.zero_point or 0, np.int64)
        self._note(op, "integer")
        ints = np.clip(total + np.asarray(out.zero_point or 0, np.int64), fmt.lo, fmt.hi)
        return QTensor(fmt.int_to_code(ints), out.format, np.asarray(out.scale, np.float64), out.zero_point or 0)

    def _rl_sat_add(self, op, a, b):
        """RL-SAT (:func:`hwsim.int_residual.rl_sat_add`): the skip added inside the writer GEMM's int32
        accumulator (input ``attrs['accumulator']``), one requant to the output spec."""
        out = self._int_output(op)
        i = int(op.attrs["accumulator"])
        acc, skip = (a, b)[i], (b, a)[i]
        if not isinstance(acc, QTensor) or acc.fmt != "int32" or np.any(acc.zero_point) \
                or not isinstance(skip, QTensor) or get_format(skip.fmt).kind != "int" or np.ndim(skip.zero_point):
            raise FixedPointError(f"op {op.name!r} (add, residual rl-sat): needs the writer GEMM's int32 accumulator "
                                  f"on {op.inputs[i]!r} and integer codes on the skip {op.inputs[1 - i]!r}")
        skip_ints = get_format(skip.fmt).code_to_int(skip.codes) - int(skip.zero_point)
        ints = rl_sat_add(get_format("int32").code_to_int(acc.codes), skip_ints, skip.scale, acc.scale,
                          float(out.scale), out.format, int(out.zero_point or 0),
                          stats=self.norm_stats.setdefault(op.name, {}))
        self._note(op, "integer")
        return self._q(get_format(out.format).int_to_code(ints), out)

    def _norm(self, op, x, gamma, beta):
        out = self._spec(op.outputs[0])
        xq = self._as_q(op.inputs[0], x)
        if out is None or xq is None:
            self._note(op, "float")
            return self._finish(op, float_norm(ori_input(op, _real(x)), op.kind, gamma, beta,
                                               op.attrs.get("eps", 1e-12)))
        in_fmt = get_format(xq.fmt)
        if in_fmt.kind != "int" or np.ndim(xq.zero_point):
            raise ValueError(f"op {op.name!r}: the integer norm unit needs integer input codes, not {xq.fmt!r}")
        p = _norm_params(op, out, in_fmt, gamma, beta)
        ints = in_fmt.code_to_int(xq.codes)
        if xq.zero_point:
            ints = ints - int(xq.zero_point)
        stats = self.norm_stats.setdefault(op.name, {})
        y = integer_norm(ints, p, stats=stats)
        codes = get_format(out.format).int_to_code(y) if get_format(out.format).kind == "int" else y
        result = QTensor(codes, out.format, np.asarray(out.scale, np.float64), out.zero_point or 0)
        if self.norm_reference:
            ref = float_norm(ori_input(op, ints * np.asarray(xq.scale, np.float64)), op.kind, gamma, beta,
                             op.attrs.get("eps", 1e-12))
            got = result.real()
            stats["rel_error"] = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
            stats["max_error_lsb"] = float(np.max(np.abs(got - ref) / np.asarray(out.scale, np.float64)))
        self._note(op, "integer")
        return result

    def layernorm(self, op, x, gamma, beta):
        return self._norm(op, x, gamma, beta)

    def rmsnorm(self, op, x, gamma, beta=None):
        return self._norm(op, x, gamma, beta)

    def requant(self, op, x):
        out = self._spec(op.outputs[0])
        xq = self._as_q(op.inputs[0], x)
        self._note(op, "integer")
        return requantize_tensor(xq, out)

    def quantize(self, op, x):
        if self.fixed_point is not None and not isinstance(x, QTensor):
            self._note(op, "float")
        self._note(op, "integer")
        return quantize_activation(_real(x), self._spec(op.outputs[0]))

    def dequantize(self, op, x):
        self._note(op, "float")
        return _real(x)

    # -- element-wise -------------------------------------------------------------------------------
    def _pointwise(self, op, x, fn):
        """A scalar function: a table over every input code when input and output are quantized (exact:
        what a vector-unit LUT holds), else float64 on the real values."""
        out = self._spec(op.outputs[0])
        if isinstance(x, QTensor) and out is not None and np.ndim(x.scale) == 0 and np.ndim(x.zero_point) == 0:
            spec = get_format(x.fmt)
            table_in = (spec.values() - x.zero_point) * x.scale
            table = quantize_to_spec(fn(table_in), out.format, out.scale, out.zero_point or 0)
            self._note(op, "lut")
            return QTensor(table[x.codes.astype(np.int64)], out.format, np.asarray(out.scale, np.float64),
                           out.zero_point or 0)
        self._note(op, "float")
        return self._finish(op, fn(_real(x)))

    def gelu(self, op, x):
        if self.fixed_point is not None:
            q, s_in, zp = self._int_input(op, op.inputs[0], x)
            out = self._int_output(op)
            _no_zero_point(op, zp)
            self._note(op, "integer")
            return self._q(integer_gelu(q, s_in, float(out.scale), out.format, int(out.zero_point or 0)), out)
        return self._pointwise(op, x, gelu)

    def relu(self, op, x):
        return self._pointwise(op, x, lambda v: np.maximum(v, 0.0))

    def kv_write(self, op, new):
        """Append to an empty KV cache: the cache holds the new keys/values in its own format."""
        cache = self.graph.tensors[op.outputs[0]].shape
        if len(cache) >= 2 and cache[-2] != np.shape(_real(new) if not isinstance(new, QTensor) else new.codes)[-2]:
            raise ValueError(f"op {op.name!r}: the graph gives no past KV cache to append to (cache length "
                             f"{cache[-2]} vs {np.shape(new.codes if isinstance(new, QTensor) else new)[-2]} new)")
        self._note(op, "integer" if isinstance(new, QTensor) else "float")
        spec = self._spec(op.outputs[0])
        if isinstance(new, QTensor) and spec is not None and np.ndim(new.scale) == 0:
            return requantize_tensor(new, spec)
        return self._finish(op, _real(new))

    def select(self, op, x):
        index = np.asarray(op.attrs["index"])
        if not isinstance(x, QTensor):
            self._note(op, "float")
            return self._finish(op, np.take(np.asarray(x), index, axis=-1))
        self._note(op, "view")
        k = x.codes.shape[-1]

        def cols(v):
            v = np.asarray(v)
            return np.take(v, index, axis=-1) if v.ndim and v.shape[-1] == k and k > 1 else v

        out = QTensor(np.take(x.codes, index, axis=-1), x.fmt, cols(x.scale), cols(x.zero_point))
        spec = self._spec(op.outputs[0])
        return out if spec is None or spec.is_dynamic or _same_spec(out, spec) else requantize_tensor(out, spec)

    def hadamard(self, op, x):
        from hwsim.hadamard import transform, transform_unscaled

        out = self._spec(op.outputs[0])
        if isinstance(x, QTensor) and out is not None and get_format(x.fmt).kind == "int" \
                and get_format(out.format).kind == "int" and np.ndim(x.scale) == 0 and not np.any(x.zero_point) \
                and not out.is_dynamic:
            ints = get_format(x.fmt).code_to_int(x.codes)
            acc = transform_unscaled(ints)
            self._note(op, "integer")
            return requant_accumulator(acc, float(x.scale) / np.sqrt(ints.shape[-1]), out)
        self._note(op, "float")
        return self._finish(op, transform(_real(x)))

    def silu(self, op, x):
        if self.fixed_point is not None:
            q, s_in, zp = self._int_input(op, op.inputs[0], x)
            out = self._int_output(op)
            _no_zero_point(op, zp)
            self._note(op, "integer")
            codes = integer_silu(q, s_in, float(out.scale), out.format, int(out.zero_point or 0),
                                 k=int(self.fixed_point["sigmoid_table_bits"]))
            return self._q(codes, out)
        self._note(op, "float")
        return self._finish(op, silu(_real(x)))

    def swiglu(self, op, gate, up):
        if self.fixed_point is not None:
            g, s_g, zg = self._int_input(op, op.inputs[0], gate, "gate")
            u, s_u, zu = self._int_input(op, op.inputs[1], up, "up")
            out = self._int_output(op)
            _no_zero_point(op, zg + zu)
            self._note(op, "integer")
            codes = integer_swiglu(g, s_g, u, s_u, float(out.scale), out.format, int(out.zero_point or 0),
                                   k=int(self.fixed_point["sigmoid_table_bits"]))
            return self._q(codes, out)
        self._note(op, "float")
        y, u = silu(_real(gate)), _real(up)  # silu's result is a fresh array: multiply in place
        return self._finish(op, np.multiply(y, u, out=y) if y.shape == u.shape else y * u)

    def rope(self, op, x):
        if self.fixed_point is not None:
            q, s_in, zp = self._int_input(op, op.inputs[0], x)
            out = self._int_output(op)
            _no_zero_point(op, zp)
            self._note(op, "integer")
            codes = integer_rope(q, s_in, float(out.scale), out.format, base=op.attrs["base"],
                                 bits=int(self.fixed_point["rope_bits"]), zero_point=int(out.zero_point or 0))
            return self._q(codes, out)
        self._note(op, "float")
        return self._finish(op, rope(_real(x), base=op.attrs["base"]))

    def mul(self, op, a, b):
        const = op.inputs[1] in self.graph.weights
        if isinstance(a, QTensor) and const and self._spec(op.outputs[0]) is not None:
            self._note(op, "rescale")
            return QTensor(a.codes, a.fmt, np.asarray(a.scale, np.float64) * np.asarray(b, np.float64),
                           a.zero_point)
        self._note(op, "float")
        return self._finish(op, _real(a) * _real(b))

    def softmax(self, op, x, mask=None):
        if self.fixed_point is not None:
            return self._int_softmax(op, x, mask)
        self._note(op, "float")
        scores = _real(x)
        return self._finish(op, softmax(scores, mask, causal=op.attrs.get("causal", False),
                                        query_period=query_period(op, scores.shape)))

    def _int_softmax(self, op, x, mask):
        q, s_in, zp = self._int_input(op, op.inputs[0], x)
        out = self._int_output(op)
        bits = int(self.fixed_point["softmax_bits"])
        if out.format != f"uint{bits}" or float(out.scale) != 2.0**-bits or out.zero_point:
            raise FixedPointError(f"op {op.name!r} (softmax): the integer softmax writes Q0.{bits} (uint{bits} at "
                                  f"scale 2**-{bits}), not {out.describe()}")
        p = calibrate_softmax(s_in, bits, self.fixed_point["exp"], int(self.fixed_point["exp_table_bits"]))
        keep = np.ones(q.shape, bool)
        if mask is not None:
            keep = keep & (mask_bias(mask, q.ndim) == 0)
        if op.attrs.get("causal", False):
            keep = keep & causal_keep(q.shape[-2], q.shape[-1], query_period(op, q.shape))
        self._note(op, "integer")
        return self._q(integer_softmax(q - zp, p, keep), out)

    def mean_pool(self, op, x, mask):
        if self.fixed_point is not None:
            q, _, zp = self._int_input(op, op.inputs[0], x)
            self._note(op, "integer")
            codes = integer_mean_pool(q, mask, zp, x.fmt, int(x.zero_point))
            y = QTensor(codes, x.fmt, np.asarray(x.scale, np.float64), int(x.zero_point))
            out = self._spec(op.outputs[0])
            return y if out is None or _same_spec(y, out) else requantize_tensor(y, self._int_output(op))
        self._note(op, "float")
        m = np.asarray(mask, np.float64)[..., None]
        return self._finish(op, (_real(x) * m).sum(axis=-2) / np.maximum(m.sum(axis=-2), 1e-9))

    def embedding(self, op, ids, word, pos=None, types=None):
        self._note(op, "lookup")
        return self._finish(op, embed(op, ids, word, pos, types))

    # -- views --------------------------------------------------------------------------------------
    def reshape(self, op, x):
        self._note(op, "view")
        if isinstance(x, QTensor):
            _check_view(op, x)
            return x.map(lambda c: np.reshape(c, reshape_dims(c.shape, op.attrs["shape"])))
        return np.reshape(x, reshape_dims(np.shape(x), op.attrs["shape"]))

    def transpose(self, op, x):
        self._note(op, "view")
        perm = op.attrs["perm"]
        if isinstance(x, QTensor):
            _check_view(op, x)
            return x.map(lambda c: np.transpose(c, perm))
        return np.transpose(x, perm)


#: Op kinds with an integer-executor kernel (the numerics registry).
KERNELS = frozenset(k for k in dir(IntegerExecutor) if not k.startswith("_") and callable(getattr(IntegerExecutor, k))
                    and k not in ("run",))


class FixedPointError(ValueError):
    """An op would compute in float (or lacks integer specs) in fixed-point mode."""


def _no_zero_point(op, zp: int) -> None:
    if zp:
        raise FixedPointError(f"op {op.name!r} ({op.kind}): the integer kernel needs symmetric input codes "
                              f"(zero point 0), not zero point {zp}")


def _rows(scale, lead: tuple) -> np.ndarray:
    """Per-tensor scale as is; a per-row scale flattened to ``[M, 1]``."""
    scale = np.asarray(scale, np.float64)
    return scale if scale.ndim == 0 else np.broadcast_to(scale, lead + (1,)).reshape(-1, 1)


def _reshape_out(out, lead: tuple):
    if isinstance(out, QTensor):
        scale = out.scale if np.ndim(out.scale) == 0 else np.asarray(out.scale)
        return QTensor(out.codes.reshape(*lead, -1), out.fmt, scale, out.zero_point)
    return out.reshape(*lead, -1)


def _check_view(op, x: QTensor) -> None:
    if np.ndim(x.scale) or np.ndim(x.zero_point):
        raise ValueError(f"op {op.name!r}: views move per-tensor codes only; the input has a per-row or "
                         f"per-channel scale of shape {np.shape(x.scale)!r}")


def _same_spec(x: QTensor, spec: QuantSpec) -> bool:
    return (x.fmt == spec.format and np.ndim(x.scale) == 0 and np.ndim(spec.scale) == 0
            and float(x.scale) == float(spec.scale) and int(x.zero_point) == int(spec.zero_point or 0))


__all__ = ["KERNELS", "FixedPointError", "IntegerExecutor"]
