"""``hwsim datapath``: the bit-exact datapath on one GEMM, for every headline format pair.

A seeded activation matrix (with a few outlier channels, as in transformer activations) and weight
matrix go through the core linear layer (:func:`hwsim.qlinear.quantized_linear`: quantize -> exact GEMM ->
requant for integer pairs, float epilogue otherwise); the table reports each pair's error against the
float64 product and the accumulator width it needs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from hwsim.cli_args import nonnegative_int, positive_int
from hwsim.formats import get_format
from hwsim.gemm import accumulator_bits, gemm_mx
from hwsim.limits import check_bytes
from hwsim.qlinear import quantized_linear
from hwsim.qspec import QuantSpec, quantize_activation, static_scale, weight_spec


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
    """One format pair through :func:`hwsim.qlinear.quantized_linear` (MX x MX through :func:`gemm_mx`:
    block-scaled activations are outside the core linear's per-tensor/per-row activation scales)."""
    w_fmt, a_fmt = get_format(case.weight_format), get_format(case.activation_format)
    if w_fmt.kind == "mx":
        qa, qw = a_fmt.quantize(x, axis=1), w_fmt.quantize(w, axis=0)
        out = gemm_mx(qa.codes, qa.scale_codes, a_fmt, qw.codes, qw.scale_codes, w_fmt)
        return {"acc_bits": None, "output": "float64", **_summary(reference, out)}
    grouped = case.weight_granularity == "group"
    xq = quantize_activation(x, QuantSpec(a_fmt.name, "tensor", scale=static_scale(np.abs(x).max(), a_fmt.name)))
    ws = weight_spec(w, w_fmt.name, case.weight_granularity, 128 if grouped else None)
    acc_bits = accumulator_bits(a_fmt, w_fmt, 128 if grouped else x.shape[1])
    integer = w_fmt.kind in ("int", "dint") and a_fmt.kind == "int" and not grouped
    out_spec = QuantSpec("int8", scale=np.asarray(np.max(np.abs(reference)) / 127.0)) if integer else None
    out = quantized_linear(xq, ws, None, out_spec)
    values = out.real() if integer else out
    return {"acc_bits": acc_bits, "output": "int8" if integer else "float64", **_summary(reference, values)}


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
