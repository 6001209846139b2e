"""GPTQ (Frantar et al., ICLR 2023, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
Transformers"): quantize a linear's weight one K-row at a time, feeding each row's rounding error back into
the rows not yet quantized through the inverse Hessian of the layer's squared output error.

For ``y = x @ W`` with ``W[K, N]`` (GPTQ's "columns" are our K rows) and calibration inputs ``X[rows, K]``::

    H = 2 XᵀX / rows + λ I,          λ = damp · mean(diag(2 XᵀX / rows))   (damp = 1 % by default)
    U = chol(H⁻¹)ᵀ                   (upper Cholesky factor of the inverse)
    for k in 0..K-1:  q_k = Q(w_k);   e_k = (w_k - q_k) / U_kk;   w_j -= U_kj e_k  (j > k)

with lazy block updates (rows are processed in blocks of ``block_size``; the rows after a block get the
block's accumulated update in one matrix product), act-order (rows processed by decreasing ``diag(H)``,
codes put back in the original order), and groups: scales either computed from the error-updated weights
when a group starts, or — ``static_groups`` (forced with act-order, whose processing order crosses groups)
— from the original weights per group. The quantizer ``Q`` is any weight format of the registry
(:mod:`hwsim.ptq.weight_quantizer`); the output is the weight's :class:`hwsim.qspec.QuantSpec` (codes,
scales, zero points), followed in a recipe by ``rtn: {weights: keep, activations: ...}``.

Dead inputs (``H_kk = 0``) get ``H_kk = 1`` and zero weights, as in the reference implementation.
The statistic is the ``xtx`` calibration statistic of the float graph (layers are not re-calibrated on the
partly quantized model). Per op the graph's ``meta['gptq']`` records the proxy losses ``tr(ΔWᵀ H ΔW)``
of GPTQ and of round-to-nearest at the same scales' rule, on the calibration ``H`` itself, and the
calibration row count ``rows``.

Calibration size matters more than anything else here: with fewer calibration rows than K, ``H`` is
singular (only the dampening makes it invertible) and GPTQ fits the calibration rows — its proxy loss on
them falls far below RTN's while its error on other inputs can exceed RTN's. On SmolLM2-135M W3 g192,
512 calibration tokens (rank(H) ≤ 509 < K = 576/1536) give perplexity 2072 against RTN's 817;
8192 tokens give 112 (README, study (b)). Use several times K rows.
"""

from __future__ import annotations

import numpy as np

from hwsim.ptq.recipe import RecipeStep, register_step
from hwsim.ptq.rtn import _known_format
from hwsim.ptq.weight_quantizer import GRANULARITY_CHOICES, WeightQuantizer, quantize_row, scale_rows
from hwsim.qspec import weight_values

MAX_DAMP_RETRIES = 3


def inverse_hessian_factor(h: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor ``U`` of ``(H + λI)⁻¹`` with ``λ = damp · mean(diag H)`` (float64).

    Retries with 10x the dampening (at most :data:`MAX_DAMP_RETRIES` times) when ``H + λI`` is not
    positive definite in float64.
    """
    h = np.asarray(h, np.float64)
    lam = damp * float(np.mean(np.diag(h)))
    for _ in range(MAX_DAMP_RETRIES + 1):
        try:
            low = np.linalg.cholesky(h + lam * np.eye(len(h)))
            low_inv = np.linalg.inv(low)
            return np.linalg.cholesky(low_inv.T @ low_inv).T
        except np.linalg.LinAlgError:
            lam = max(lam * 10.0, 1e-12)
    raise np.linalg.LinAlgError(f"GPTQ: H + λI is not positive definite even with λ = {lam:g}")


def output_error(w: np.ndarray, w_hat: np.ndarray, h: np.ndarray) -> float:
    """``tr(ΔWᵀ H ΔW)`` with ``ΔW = W - Ŵ``: twice the mean squared output error per row for ``H = 2XᵀX/rows``."""
    d = np.asarray(w, np.float64) - np.asarray(w_hat, np.float64)
    return float(np.sum(d * (np.asarray(h, np.float64) @ d)))  # BLAS; an unoptimised 3-operand einsum is K²N


def gptq_quantize(w: np.ndarray, h: np.ndarray, quantizer: WeightQuantizer, *, block_size: int = 128,
                  damp: float = 0.01, act_order: bool = True, static_groups: bool = False):
    """GPTQ-quantize ``W[K, N]`` against Hessian ``H[K, K]``; returns its :class:`~hwsim.qspec.QuantSpec`."""
    w = np.array(w, np.float64)
    h = np.array(h, np.float64)
    k = w.shape[0]
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[dead, :] = 0.0
    template = quantizer.spec(w)  # scales of the original weights (per channel always; groups when static)
    g = quantizer.rows_per_scale
    static = g is None or static_groups or act_order
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    w, h = w[perm], h[perm][:, perm]
    u = inverse_hessian_factor(h, damp)
    scale_r, zp_r = scale_rows(template, k)
    group_scale = None if static else np.array(template.scale, np.float64)
    group_zp = None if static or template.zero_point is None else np.array(template.zero_point, np.int64)
    codes = np.empty_like(template.codes)
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        w1, u1 = w[i1:i2].copy(), u[i1:i2, i1:i2]
        err = np.zeros_like(w1)
        for i in range(i2 - i1):
            row = i1 + i
            if static:
                r = perm[row] if len(scale_r) > 1 else 0
                s, z = scale_r[r], zp_r[r]
            else:
                if row % g == 0:
                    spec = quantizer.spec(np.concatenate([w1[i:], w[i2:row + g]])[:g])
                    group_scale[row // g] = spec.scale[0]
                    if group_zp is not None:
                        group_zp[row // g] = spec.zero_point[0]
                s = group_scale[row // g]
                z = group_zp[row // g] if group_zp is not None else np.zeros_like(s)
            c, q = quantize_row(w1[i], template, s, z)
            codes[row] = c
            e = (w1[i] - q) / u1[i, i]
            w1[i + 1:] -= np.outer(u1[i, i + 1:], e)
            err[i] = e
        w[i2:] -= u[i1:i2, i2:].T @ err
    out = np.empty_like(codes)
    out[perm] = codes
    if static:
        return template.with_(codes=out)
    return template.with_(codes=out, scale=group_scale, zero_point=group_zp)


@register_step
class GPTQ(RecipeStep):
    name = "gptq"
    needs = frozenset({"xtx"})
    defaults = {"weights": "int4", "granularity": "channel", "group_size": None, "symmetric": True,
                "clip": "minmax", "block_size": 128, "damp": 0.01, "act_order": True, "static_groups": False}

    @classmethod
    def check(cls, ck, p, path):
        check_quantizer_params(ck, p, path)
        if isinstance(p["block_size"], bool) or not isinstance(p["block_size"], int) or p["block_size"] < 1:
            ck.add(f"{path}.block_size", f"expected a positive integer, not {p['block_size']!r}")
        if isinstance(p["damp"], bool) or not isinstance(p["damp"], (int, float)) or not 0 < p["damp"] < 1:
            ck.add(f"{path}.damp", f"expected a number in (0, 1), not {p['damp']!r}")
        for key in ("act_order", "static_groups"):
            ck.boolean(p, key, path, p[key])

    def apply(self, graph, stats):
        g = graph.edit()
        report = dict(graph.meta.get("gptq", {}))
        for op in graph.ops:
            p = self.params_for(op.name)
            if op.kind != "linear" or p["weights"] in ("keep", "float"):
                if op.kind == "linear" and p["weights"] == "float":
                    g.set_quant(op.inputs[1], None)
                continue
            quantizer = WeightQuantizer.from_params(p)
            w = np.asarray(graph.weights[op.inputs[1]], np.float64)
            problem = quantizer.check_shape(w.shape[0])
            if problem:
                raise ValueError(f"gptq: op {op.name!r}: {problem}; set group_size for it with an override")
            h = stats.hessian(op.inputs[0])
            spec = gptq_quantize(w, h, quantizer, block_size=p["block_size"], damp=p["damp"],
                                 act_order=p["act_order"], static_groups=p["static_groups"])
            g.set_quant(op.inputs[1], spec)
            report[op.name] = {"error": output_error(w, weight_values(spec), h),
                               "rtn_error": output_error(w, quantizer.dequantize(w), h),
                               "rows": int(stats.rows[op.inputs[0]])}
        g.meta["gptq"] = report
        return g


def check_quantizer_params(ck, p, path) -> None:
    """Validate the weight-quantizer keys shared by GPTQ and AWQ."""
    w = p["weights"]
    if w not in ("keep", "float") and not _known_format(w):
        ck.add(f"{path}.weights", f"expected a format name, 'keep' or 'float', not {w!r}")
    if p["granularity"] not in GRANULARITY_CHOICES:
        ck.add(f"{path}.granularity", f"expected one of {list(GRANULARITY_CHOICES)}, not {p['granularity']!r}")
    if p["granularity"] == "group" and (isinstance(p["group_size"], bool) or not isinstance(p["group_size"], int)
                                        or p["group_size"] < 1):
        ck.add(f"{path}.group_size", f"expected a positive integer for group granularity, not {p['group_size']!r}")
    ck.boolean(p, "symmetric", path, p["symmetric"])
    if p["clip"] not in ("minmax", "mse"):
        ck.add(f"{path}.clip", f"expected one of ['minmax', 'mse'], not {p['clip']!r}")
