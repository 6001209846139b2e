"""Bit-exact quantized execution of a :class:`hwsim.graph.Graph` on hwsim's golden datapath.

Numerics per op kind (``QuantBackend``), with ``A`` the activation format and ``W`` the weight format
of the chosen :class:`QuantConfig`:

* ``linear``: weights quantized once (:func:`hwsim.quantize.quantize`, per tensor / channel / group or MX
  blocks along K); activations are codes of ``A`` with a static per-tensor scale from float
  calibration. Accumulators from :func:`hwsim.gemm.gemm_fixed` (exact fixed point). For tensor/channel
  weights the bias is added in the accumulator (``round(b / (s_a s_w 2^lsb))``) and the result leaves
  through :func:`hwsim.requant.requantize` (32-bit multiplier, gemmlowp rounding) into ``A`` codes,
  or into the int16 residual stream when an ``add`` consumes it. Group/MX weights: one exact
  accumulator per group, combined with the group scales in float64 by the post-processing unit, then
  rounded into ``A`` (or the residual stream).
* attention ``matmul``: Q·Kᵀ and P·V through ``gemm_fixed`` per (batch, head); P·V is requantized like
  a linear layer.
* ``softmax``: float64 on the dequantized Q·Kᵀ accumulators (vector unit), probabilities encoded as
  ``uint8`` with scale 1/255 (integer A) or as ``A`` codes with scale ``1/A.max`` (float A).
* ``gelu``: a lookup table over all 2^bits input codes of ``A`` (exact; what a vector-unit LUT holds).
* ``add`` (residual): both operands requantized into an int16 residual stream with a static scale,
  summed in int32. ``layernorm``/``rmsnorm``: :func:`hwsim.layernorm.integer_norm` on that integer stream,
  output requantized into ``A`` codes.
* ``embedding``/``mean_pool``/``rope``/``swiglu``: table lookups and the pooled output stay float64
  (outside the MAC array); ``reshape``/``transpose`` move codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.formats import get_format
from hwsim.gemm import gemm_fixed
from hwsim.layernorm import calibrate_norm, float_norm, integer_norm
from hwsim.models.execute import embed
from hwsim.requant import quantize_multiplier, requantize

RESIDUAL_FORMAT = "int16"
RESIDUAL_MAX = 2**15 - 1


@dataclass(frozen=True)
class QuantConfig:
    """A quantization recipe: weight format/granularity and activation format."""

    name: str
    w_format: str
    w_granularity: str = "channel"
    group_size: int | None = None
    a_format: str = "int8"
    #: Checkpoint layout (``hwsim.models.checkpoints.LAYOUTS``): weights are written in that layout from
    #: the float model, read back and executed as stored (codes, group scales and zero points).
    checkpoint: str | None = None
    a_granularity: str = "tensor"

    def describe(self) -> str:
        g = f"group{self.group_size}" if self.w_granularity == "group" else self.w_granularity
        src = f" from a {self.checkpoint} checkpoint" if self.checkpoint else ""
        return f"W {self.w_format}/{g}{src}, A {self.a_format}/{self.a_granularity}"


PRESETS = {
    "w8a8": QuantConfig("w8a8", "int8", "channel"),
    "w8a8-tensor": QuantConfig("w8a8-tensor", "int8", "tensor"),
    "w4a8": QuantConfig("w4a8", "int4", "channel"),
    "w4a8-g32": QuantConfig("w4a8-g32", "int4", "group", 32),
    "w4a8-dint4": QuantConfig("w4a8-dint4", "dint4", "channel"),
    "w4a8-dint4-g32": QuantConfig("w4a8-dint4-g32", "dint4", "group", 32),
    "fp8": QuantConfig("fp8", "float8_e4m3fn", "channel", a_format="float8_e4m3fn"),
    "fp4-g32-a8": QuantConfig("fp4-g32-a8", "float4_e2m1fn", "group", 32, a_format="float8_e4m3fn"),
    "mxfp4-a8": QuantConfig("mxfp4-a8", "mxfp4", "group", 32, a_format="float8_e4m3fn"),
    "gptq-w4a8": QuantConfig("gptq-w4a8", "uint4", "group", 128, checkpoint="gptq"),
    "awq-w4a8": QuantConfig("awq-w4a8", "uint4", "group", 128, checkpoint="awq"),
    "ct-w4a8": QuantConfig("ct-w4a8", "uint4", "group", 128, checkpoint="pack-quantized"),
    "nvfp4-a8": QuantConfig("nvfp4-a8", "float4_e2m1fn", "group", 16, a_format="float8_e4m3fn",
                            checkpoint="nvfp4-pack-quantized"),
    # GGUF models run their stored weights (Q4_1 blocks; Q8_0 embedding/head) with int8 per-token activations
    "q4_1-a8": QuantConfig("q4_1-a8", "uint4", "group", 32, checkpoint="gguf", a_granularity="token"),
}


def get_config(name: str) -> QuantConfig:
    if name not in PRESETS:
        raise ValueError(f"format preset must be one of {', '.join(PRESETS)}, not {name!r}")
    return PRESETS[name]


@dataclass
class QAct:
    """Activation codes of ``fmt``: real value = (value(code) - zero_point) * scale."""

    codes: np.ndarray
    fmt: str
    scale: float
    zero_point: int = 0
    #: Optional higher-precision copy written by the norm unit: (int16 values, scale) for residuals.
    stage: tuple | None = None

    def real(self) -> np.ndarray:
        return (get_format(self.fmt).decode(self.codes) - self.zero_point) * self.scale

    def fixed(self) -> tuple[np.ndarray, int]:
        """Exact fixed-point integers F (zero point removed) and their LSB exponent."""
        spec = get_format(self.fmt)
        if self.zero_point and spec.lsb_exponent != 0:
            raise ValueError(f"zero points apply to integer formats only, not {self.fmt!r}")
        return spec.to_fixed(self.codes) - self.zero_point, spec.lsb_exponent

    def map(self, fn) -> QAct:
        stage = None if self.stage is None else (fn(self.stage[0]), self.stage[1])
        return QAct(fn(self.codes), self.fmt, self.scale, self.zero_point, stage)


@dataclass
class Residual:
    """Integer residual stream: real value = ints * scale (int16 values; int32 after an add)."""

    ints: np.ndarray
    scale: float

    def real(self) -> np.ndarray:
        return self.ints * self.scale


@dataclass
class Scores:
    """Float64 values computed exactly from accumulators (Q·Kᵀ before softmax)."""

    values: np.ndarray

    def map(self, fn) -> Scores:
        return Scores(fn(self.values))


@dataclass
class QWeight:
    codes: np.ndarray  # [K, N]
    fmt: str
    scale: np.ndarray  # [N] (tensor/channel) or [K/g, N] (group)
    group_size: int | None
    zero_point: np.ndarray | None = None  # [K/g, N] integer zero points (checkpoints)


def _real(x) -> np.ndarray:
    return x.real() if isinstance(x, QAct | Residual) else np.asarray(x, np.float64)


def _to_codes(ints: np.ndarray, fmt: str) -> np.ndarray:
    spec = get_format(fmt)
    return spec.int_to_code(ints) if spec.kind == "int" else ints


class QuantBackend:
    """Executes a graph on the golden datapath; see the module docstring.

    Parameters
    ----------
    config : QuantConfig
    amax : dict
        Calibrated max |value| per tensor name (from :func:`calibrate`).
    graph : Graph
        The graph to run (consumers decide where outputs go).
    """

    def __init__(self, config: QuantConfig, amax: dict, graph, *, smooth_alpha: float | None = 0.7,
                 gelu_from_acc: bool = True, smooth_kinds=("layernorm", "rmsnorm"), checkpoint: dict | None = None,
                 unsigned_gelu: bool = True):
        self.config = config
        self.amax = amax
        self.a_spec = get_format(config.a_format)
        self.int_acts = self.a_spec.kind == "int"
        self._weights: dict[str, QWeight] = {}
        self._norms: dict = {}
        self._norm_ref: dict = {}
        self.norm_stats: dict = {}
        self.consumers: dict[str, list] = {}
        for op in graph.ops:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)
        self.graph = graph
        if checkpoint is not None:
            smooth_alpha = None  # stored weights cannot absorb smoothing scales
            for name, q in checkpoint.items():
                self._weights[name] = _checkpoint_weight(q)
        self.gelu_from_acc = gelu_from_acc
        self.unsigned_gelu = unsigned_gelu
        self.smooth_kinds = smooth_kinds
        self.smooth = {} if smooth_alpha is None else self._smoothing(graph, float(smooth_alpha))

    def _smoothing(self, graph, alpha: float) -> dict:
        """SmoothQuant / ORI-LN per-channel λ for norm and GELU outputs that feed linears.

        The producer divides its output by λ (γ/λ and β/λ in the norm's γ codes; a per-channel GELU
        output scale), the consuming linears' weight rows are multiplied by λ, a residual ``add`` uses a
        per-channel requant multiplier and pooling multiplies back: the network function is unchanged.
        ``λ_c = amax(x_c)^α / amax(W_c,:)^(1-α)``.
        """
        lam = {}
        for op in graph.ops:
            if op.kind not in self.smooth_kinds or (op.kind == "gelu" and not self.gelu_from_acc):
                continue
            t = op.outputs[0]
            users = self.consumers.get(t, [])
            linears = [u for u in users if u.kind == "linear" and u.inputs[0] == t]
            if not linears or any(u.kind not in ("linear", "add", "mean_pool") for u in users):
                continue
            x_amax = np.maximum(np.asarray(self.amax[t + "#c"], np.float64), 1e-6)
            w_amax = np.max([np.abs(graph.weights[u.inputs[1]]).max(axis=1) for u in linears], axis=0)
            lam[t] = np.clip(x_amax**alpha / np.maximum(w_amax, 1e-6) ** (1 - alpha), 1e-3, 1e3)
        return lam

    # -- helpers --------------------------------------------------------------------------------
    def _scale(self, tensor: str, fmt_max: float) -> float:
        if tensor not in self.amax:
            raise ValueError(f"tensor {tensor!r} has no calibration statistics; calibrate on this graph first")
        return max(float(self.amax[tensor]), 1e-12) / fmt_max

    def _act_scale(self, tensor: str) -> float:
        fmax = self.a_spec.hi if self.int_acts else self.a_spec.max
        if tensor in self.smooth:
            return max(float(np.max(self.amax[tensor + "#c"] / self.smooth[tensor])), 1e-12) / fmax
        return self._scale(tensor, fmax)

    def _residual_scale(self, tensor: str) -> float:
        return self._scale(tensor, RESIDUAL_MAX)

    def _add_output(self, tensor: str) -> str | None:
        """Output tensor of the residual ``add`` consuming ``tensor`` (None if there is none)."""
        adds = [op for op in self.consumers.get(tensor, []) if op.kind == "add"]
        return adds[0].outputs[0] if adds else None

    def _quantize_act(self, tensor: str, x) -> QAct:
        if isinstance(x, QAct):
            return x
        s = self._act_scale(tensor)
        return QAct(self.a_spec.encode(_real(x) / s, saturate=True), self.config.a_format, s)

    def weight(self, name: str, w: np.ndarray) -> QWeight:
        if name not in self._weights:
            from hwsim.quantize import quantize

            c = self.config
            spec = get_format(c.w_format)
            if spec.kind == "mx":
                t = spec.quantize(w, axis=0)
                scale = np.ldexp(1.0, t.scale_codes.astype(np.int64) - 127).astype(np.float64)
                self._weights[name] = QWeight(t.codes, spec.element.name, scale, spec.block_size)
            elif c.w_granularity == "group":
                if w.shape[0] % c.group_size:
                    raise ValueError(f"weight {name!r}: K={w.shape[0]} is not a multiple of the group size, "
                                     f"not {c.group_size!r}")
                q = quantize(w, c.w_format, granularity="group", axis=0, group_size=c.group_size)
                self._weights[name] = QWeight(q.codes, spec.name, np.asarray(q.scale, np.float64).reshape(
                    -1, w.shape[1]), c.group_size)
            else:
                q = quantize(w, c.w_format, granularity=c.w_granularity, axis=1)
                scale = np.broadcast_to(np.asarray(q.scale, np.float64).reshape(-1), (w.shape[1],)).copy()
                self._weights[name] = QWeight(q.codes, spec.name, scale, None)
        return self._weights[name]

    def _emit(self, out_name: str, acc, acc_scale, bias, is_integer: bool):
        """Route an accumulator (exact int64 with per-column real scale, or float64 real values when
        ``acc_scale`` is None) to the residual stream or to activation codes."""
        if any(op.kind == "gelu" for op in self.consumers.get(out_name, [])) and self.gelu_from_acc:
            y = acc * acc_scale if acc_scale is not None else acc
            return Scores(y if bias is None else y + bias)
        add_out = self._add_output(out_name)
        residual = add_out is not None
        s_out = self._residual_scale(add_out) if residual else self._act_scale(out_name)
        out_fmt = RESIDUAL_FORMAT if residual else self.config.a_format
        if is_integer and (residual or self.int_acts):
            acc = np.asarray(acc, np.int64)
            if bias is not None:
                acc = acc + np.round(np.asarray(bias, np.float64) / acc_scale).astype(np.int64)
            m, sh = quantize_multiplier(np.asarray(acc_scale / s_out, np.float64))
            ints = requantize(acc, m, sh, 0, out_format=out_fmt, rounding="gemmlowp")
            return Residual(ints, s_out) if residual else QAct(_to_codes(ints, out_fmt), out_fmt, s_out)
        y = acc * acc_scale if acc_scale is not None else acc
        if bias is not None:
            y = y + bias
        if residual:
            return Residual(np.clip(np.rint(y / s_out), -RESIDUAL_MAX, RESIDUAL_MAX).astype(np.int64), s_out)
        return QAct(self.a_spec.encode(y / s_out, saturate=True), out_fmt, s_out)

    # -- ops ------------------------------------------------------------------------------------
    def embedding(self, op, ids, word, pos=None, types=None):
        return embed(op, ids, word, pos, types)

    def linear(self, op, x, w, b=None):
        xa = self._quantize_act(op.inputs[0], x)
        if op.inputs[0] in self.smooth and op.name not in self._weights:
            w = w * self.smooth[op.inputs[0]][:, None]
        qw = self.weight(op.name, w)
        lead = xa.codes.shape[:-1]
        a2 = xa.codes.reshape(-1, xa.codes.shape[-1])
        spec_a = get_format(xa.fmt)
        if qw.group_size is None:
            acc, lsb = gemm_fixed(a2, spec_a, qw.codes, qw.fmt, a_zero_point=xa.zero_point)
            integer = spec_a.kind in ("int", "dint") and get_format(qw.fmt).kind in ("int", "dint")
            acc = acc if integer else np.asarray(acc, np.float64)
            out = self._emit(op.outputs[0], acc, xa.scale * qw.scale * 2.0**lsb, b, integer)
        else:
            g = qw.group_size
            y = np.zeros((a2.shape[0], qw.codes.shape[1]))
            for i in range(qw.codes.shape[0] // g):
                zp = 0 if qw.zero_point is None else qw.zero_point[i].reshape(1, -1)
                acc, lsb = gemm_fixed(a2[:, i * g:(i + 1) * g], spec_a, qw.codes[i * g:(i + 1) * g], qw.fmt,
                                      a_zero_point=xa.zero_point, b_zero_point=zp)
                y += np.asarray(acc, np.float64) * (qw.scale[i] * 2.0**lsb)
            out = self._emit(op.outputs[0], y * xa.scale, None, b, False)
        if isinstance(out, Residual):
            return Residual(out.ints.reshape(*lead, -1), out.scale)
        return out.map(lambda c: c.reshape(*lead, -1))

    def matmul(self, op, a, b):
        qa = self._quantize_act(op.inputs[0], a)
        qb = self._quantize_act(op.inputs[1], b)
        lead = qa.codes.shape[:-2]
        ac = qa.codes.reshape(-1, *qa.codes.shape[-2:])
        bc = qb.codes.reshape(-1, *qb.codes.shape[-2:])
        accs, lsb = [], 0
        for i in range(ac.shape[0]):
            acc, lsb = gemm_fixed(ac[i], qa.fmt, bc[i], qb.fmt, a_zero_point=qa.zero_point,
                                  b_zero_point=qb.zero_point)
            accs.append(np.asarray(acc, np.int64))
        acc = np.stack(accs).reshape(*lead, *accs[0].shape)
        scale = qa.scale * qb.scale * 2.0**lsb
        if any(c.kind == "softmax" for c in self.consumers.get(op.outputs[0], [])):
            return Scores(acc * scale * op.attrs.get("scale", 1.0))
        integer = all(get_format(f).kind in ("int", "dint") for f in (qa.fmt, qb.fmt))
        return self._emit(op.outputs[0], acc if integer else acc.astype(np.float64), scale, None, integer)

    def softmax(self, op, x, mask=None):
        from hwsim.models.execute import softmax

        p = softmax(x.values if isinstance(x, Scores) else _real(x), mask, causal=op.attrs.get("causal", False),
                    query_period=op.attrs.get("query_period"))
        if self.int_acts:
            u8 = get_format("uint8")
            return QAct(u8.encode(p * 255.0, saturate=True), "uint8", 1.0 / 255.0)
        return QAct(self.a_spec.encode(p * self.a_spec.max, saturate=True), self.config.a_format,
                    1.0 / self.a_spec.max)

    def gelu(self, op, x):
        from hwsim.models.execute import gelu

        s_out = self._act_scale(op.outputs[0])
        if isinstance(x, Scores) and self.int_acts and self.unsigned_gelu and op.outputs[0] not in self.smooth:
            # GELU >= -0.16997: asymmetric unsigned codes with a zero point double the resolution
            spec = get_format("u" + self.config.a_format)
            lo = -0.17
            s_u = (max(float(self.amax[op.outputs[0]]), 1e-12) - lo) / spec.hi
            zp = int(round(-lo / s_u))
            codes = spec.encode(np.clip(np.rint(gelu(x.values) / s_u) + zp, 0, spec.hi), saturate=True)
            return QAct(codes, spec.name, s_u, zp)
        if isinstance(x, Scores):
            lam = self.smooth.get(op.outputs[0], 1.0)
            return QAct(self.a_spec.encode(gelu(x.values) / (s_out * lam), saturate=True), self.config.a_format,
                        s_out)
        xa = self._quantize_act(op.inputs[0], x)
        spec = get_format(xa.fmt)
        table = self.a_spec.encode(gelu((spec.values() - xa.zero_point) * xa.scale) / s_out, saturate=True)
        return QAct(table[xa.codes.astype(np.int64)], self.config.a_format, s_out)

    def add(self, op, a, b):
        s_r = self._residual_scale(op.outputs[0])
        total = np.zeros((), np.int64)
        for name, x in zip(op.inputs, (a, b), strict=True):
            if isinstance(x, Residual) and x.scale == s_r:
                total = total + x.ints
                continue
            if isinstance(x, Residual):
                fixed, lsb, scale = x.ints, 0, x.scale
            elif isinstance(x, QAct) and x.stage is not None:
                fixed, lsb, scale = x.stage[0], 0, x.stage[1]
            elif isinstance(x, QAct):
                (fixed, lsb), scale = x.fixed(), x.scale
            else:
                total = total + np.clip(np.rint(_real(x) / s_r), -RESIDUAL_MAX, RESIDUAL_MAX).astype(np.int64)
                continue
            m, sh = quantize_multiplier(scale * 2.0**lsb * self.smooth.get(name, 1.0) / s_r)
            total = total + requantize(fixed, m, sh, 0, out_format=RESIDUAL_FORMAT)
        return Residual(total, s_r)

    def _norm(self, op, x, gamma, beta):
        if not isinstance(x, Residual):
            s = self._residual_scale(op.inputs[0])
            x = Residual(np.clip(np.rint(_real(x) / s), -RESIDUAL_MAX, RESIDUAL_MAX).astype(np.int64), s)
        if op.name not in self._norms:
            out_scale = self._act_scale(op.outputs[0])
            in_absmax = float(self.amax[op.inputs[0]]) / x.scale
            lam = self.smooth.get(op.outputs[0], 1.0)
            gamma = gamma / lam
            beta = None if beta is None else beta / lam
            self._norms[op.name] = calibrate_norm(op.kind, gamma, beta, in_absmax=in_absmax,
                                                  out_scale=out_scale, out_format=self.config.a_format)
            self._norm_ref[op.name] = (gamma, beta)
        p = self._norms[op.name]
        stats = self.norm_stats.setdefault(op.name, {})
        out, stage = integer_norm(x.ints, p, stats=stats, return_stage=True)
        # error of the integer unit alone: float LN of the same integer input vs the decoded output
        g_eff, b_eff = self._norm_ref[op.name]
        ref = float_norm(x.ints * x.scale, op.kind, g_eff, b_eff, op.attrs.get("eps", 1e-12))
        got = get_format(p.out_format).decode(_to_codes(out, p.out_format)) * p.out_scale \
            if get_format(p.out_format).kind != "int" else out * p.out_scale
        stats["rel_error"] = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
        stats["max_error_lsb"] = float(np.max(np.abs(got - ref)) / p.out_scale)
        return QAct(_to_codes(out, p.out_format), p.out_format, p.out_scale, 0, (stage, p.stage_scale))

    def layernorm(self, op, x, gamma, beta):
        return self._norm(op, x, gamma, beta)

    def rmsnorm(self, op, x, gamma):
        return self._norm(op, x, gamma, None)

    def reshape(self, op, x):
        shape = op.attrs["shape"]
        return x.map(lambda c: c.reshape(shape)) if isinstance(x, QAct | Scores) else np.reshape(x, shape)

    def transpose(self, op, x):
        perm = op.attrs["perm"]
        return x.map(lambda c: np.transpose(c, perm)) if isinstance(x, QAct | Scores) else np.transpose(x, perm)

    def mean_pool(self, op, x, mask):
        m = np.asarray(mask, np.float64)[..., None]
        x = x.stage[0] * x.stage[1] if isinstance(x, QAct) and x.stage is not None else _real(x)
        x = x * self.smooth.get(op.inputs[0], 1.0)
        return (x * m).sum(axis=-2) / np.maximum(m.sum(axis=-2), 1e-9)


def _checkpoint_weight(q) -> QWeight:
    """A :class:`hwsim.models.checkpoints.QuantLinear` as executable group-quantized weights."""
    if q.layout == "nvfp4-pack-quantized":
        return QWeight(q.codes.astype(np.uint8), "float4_e2m1fn", q.scales / q.global_scale, q.group_size)
    fmt = f"uint{q.bits}"
    zeros = None if q.zeros is None else np.asarray(q.zeros, np.int64)
    return QWeight(q.codes.astype(np.uint8), fmt, np.asarray(q.scales, np.float64), q.group_size, zeros)


def calibrate(graph_builder, batches, *, amax: dict | None = None) -> dict:
    """Max |value| of every op output (and graph input) over float runs on ``batches``.

    ``graph_builder(feeds)`` returns the graph for one batch of feeds.
    """
    from hwsim.models.execute import FloatBackend, run_graph

    amax = {} if amax is None else amax

    def observe(op, value):
        v = float(np.max(np.abs(value))) if np.size(value) else 0.0
        name = op.outputs[0]
        amax[name] = max(amax.get(name, 0.0), v)
        if 2 <= np.ndim(value) <= 3:
            per = np.abs(value).reshape(-1, np.shape(value)[-1]).max(axis=0).astype(np.float64)
            amax[name + "#c"] = np.maximum(amax.get(name + "#c", 0.0), per)

    for feeds in batches:
        run_graph(graph_builder(feeds), feeds, FloatBackend(), observer=observe)
    return amax
