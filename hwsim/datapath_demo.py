"""``hwsim datapath``: the bit-exact datapath on one GEMM, for every headline format pair.

A seeded activation matrix (with a few outlier channels, as in transformer activations) and weight
matrix go through quantize -> exact GEMM -> requant (integer outputs) or scale (float outputs); the
table reports each pair's error against the float64 product and the accumulator width it needs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from hwsim.cli_args import nonnegative_int, positive_int
from hwsim.formats import get_format
from hwsim.gemm import accumulator_bits, gemm, gemm_fixed, gemm_mx
from hwsim.limits import check_bytes
from hwsim.quantize import quantize
from hwsim.requant import quantize_multiplier, requantize


@dataclass(frozen=True)
class DatapathCase:
    """One row of the demo: weight/activation formats and weight granularity."""

    label: str
    weight_format: str
    activation_format: str
    weight_granularity: str = "channel"


DEFAULT_CASES = (
    DatapathCase("W8A8 int (requant to int8)", "int8", "int8"),
    DatapathCase("W4A8 int", "int4", "int8"),
    DatapathCase("W4A8 dINT4", "dint4", "int8"),
    DatapathCase("W4A8 int4 group-128", "int4", "int8", "group"),
    DatapathCase("FP8 E4M3 x E4M3", "float8_e4m3fn", "float8_e4m3fn", "tensor"),
    DatapathCase("FP8 E5M2 x E5M2", "float8_e5m2", "float8_e5m2", "tensor"),
    DatapathCase("FP4 E2M1 x E2M1", "float4_e2m1fn", "float4_e2m1fn"),
    DatapathCase("MXFP8 E4M3", "mxfp8_e4m3", "mxfp8_e4m3", "block32"),
    DatapathCase("MXFP4", "mxfp4", "mxfp4", "block32"),
)


def demo_operands(m: int = 64, k: int = 384, n: int = 384, seed: int = 0):
    """Seeded activations (M x K, 4 outlier channels x20) and weights (K x N, ~N(0, 1/K))."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k))
    x[:, rng.choice(k, 4, replace=False)] *= 20.0
    w = rng.standard_normal((k, n)) / np.sqrt(k)
    return x, w


def _error(reference: np.ndarray, approx: np.ndarray) -> tuple[float, float]:
    diff = approx - reference
    rel_rms = float(np.sqrt(np.mean(diff**2)) / np.sqrt(np.mean(reference**2)))
    cos = float(np.sum(approx * reference) / (np.linalg.norm(approx) * np.linalg.norm(reference)))
    return rel_rms, cos


def _run_case(case: DatapathCase, x: np.ndarray, w: np.ndarray, reference: np.ndarray) -> dict:
    w_fmt, a_fmt = get_format(case.weight_format), get_format(case.activation_format)
    if w_fmt.kind == "mx":
        qa, qw = a_fmt.quantize(x, axis=1), w_fmt.quantize(w, axis=0)
        out = gemm_mx(qa.codes, qa.scale_codes, a_fmt, qw.codes, qw.scale_codes, w_fmt)
        return {"acc_bits": None, "output": "float64", **_summary(reference, out)}
    group = {"group_size": 128, "axis": 0} if case.weight_granularity == "group" else {"axis": 1}
    qa = quantize(x, a_fmt, granularity="tensor")
    if case.weight_granularity == "group":
        out = _grouped_gemm(qa, w, w_fmt)
        return {"acc_bits": accumulator_bits(a_fmt, w_fmt, 128), "output": "float64", **_summary(reference, out)}
    qw = quantize(w, w_fmt, granularity=case.weight_granularity, **group)
    acc_bits = accumulator_bits(a_fmt, w_fmt, x.shape[1])
    if w_fmt.kind in ("int", "dint") and a_fmt.kind == "int":
        # integer fixed-point accumulator; one LSB is worth scale_a * scale_w * 2**lsb (per channel)
        acc, lsb = gemm_fixed(qa.codes, a_fmt, qw.codes, w_fmt)
        out = _requant_int8(acc, qa.scale * qw.scale * 2.0**lsb, reference)
        return {"acc_bits": acc_bits, "output": "int8", **_summary(reference, out)}
    acc = gemm(qa.codes, a_fmt, qw.codes, w_fmt)
    return {"acc_bits": acc_bits, "output": "float64", **_summary(reference, acc * qa.scale * qw.scale)}


def _grouped_gemm(qa, w: np.ndarray, w_fmt) -> np.ndarray:
    """Per-group weights: one exact GEMM per K-group, scaled and summed (as a group-wise PE does)."""
    qw = quantize(w, w_fmt, granularity="group", axis=0, group_size=128)
    out = np.zeros((qa.codes.shape[0], w.shape[1]))
    for g in range(w.shape[0] // 128):
        rows = slice(g * 128, (g + 1) * 128)
        acc = gemm(qa.codes[:, rows], qa.format, qw.codes[rows], w_fmt)
        out += acc * qa.scale * qw.scale[g:g + 1]
    return out


def _requant_int8(acc: np.ndarray, acc_scale: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Requantize int32 accumulators to int8 with per-channel M * 2**shift (gemmlowp rounding)."""
    out_scale = np.max(np.abs(reference)) / 127.0
    multiplier, shift = quantize_multiplier(np.ravel(acc_scale / out_scale))
    q = requantize(acc, multiplier[None, :], shift[None, :], 0, out_format="int8", rounding="gemmlowp")
    return q * out_scale


def _summary(reference: np.ndarray, out: np.ndarray) -> dict:
    rel_rms, cos = _error(reference, out)
    return {"rel_rms_error": rel_rms, "cosine": cos}


def _check_shape(m: int, k: int, n: int) -> None:
    """Refuse shapes the demo cannot run, before allocating (about 16 float64 copies of the operands)."""
    for name, value in (("m", m), ("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"datapath --{name}: expected a positive integer, not {value!r}")
    if k < 4:
        raise ValueError(f"datapath --k: expected at least 4 (the demo plants 4 outlier channels), not {k!r}")
    check_bytes(16 * 8 * (m * k + k * n + m * n), f"datapath --m {m} --k {k} --n {n}: working memory in bytes")


def run_datapath_demo(m: int = 64, k: int = 384, n: int = 384, seed: int = 0):
    """Run every default case; return a DataFrame (one row per format pair)."""
    import pandas as pd

    _check_shape(m, k, n)
    x, w = demo_operands(m, k, n, seed)
    reference = x @ w
    rows = []
    for case in DEFAULT_CASES:
        rows.append({"datapath": case.label, "weights": case.weight_format,
                     "activations": case.activation_format, "w_granularity": case.weight_granularity,
                     **_run_case(case, x, w, reference)})
    return pd.DataFrame(rows)


def _run(args: argparse.Namespace) -> int:
    table = run_datapath_demo(args.m, args.k, args.n, args.seed)
    print(f"Bit-exact datapath on one GEMM  M x K x N = {args.m} x {args.k} x {args.n} (seed {args.seed});"
          " error vs the float64 product")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def register(subparsers) -> None:
    """Add the ``datapath`` sub-command."""
    parser = subparsers.add_parser("datapath", help="bit-exact datapath demo on one GEMM per format pair")
    parser.add_argument("--m", type=positive_int, default=64, help="rows of A (tokens)")
    parser.add_argument("--k", type=positive_int, default=384, help="reduction length (at least 4)")
    parser.add_argument("--n", type=positive_int, default=384, help="columns of B (output channels)")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.set_defaults(handler=_run)
