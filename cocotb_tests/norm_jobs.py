"""Row jobs for the integer norm unit bench, prepared on the pytest side with :mod:`hwsim.layernorm`.

Real rows: the inputs of MiniLM-L6 layer 0's three LayerNorms (embeddings, attention output, FFN
output) on one sentence, and SmolLM2-135M's first RMSNorm input (the token embeddings of a short
text), quantized to integers as a 21-bit residual-stream accumulator (``q = round(x / s_in)``,
``max |q| = 2**20``); :func:`hwsim.layernorm.calibrate_norm` on the layer's γ/β with the float
output's range as the int8 output scale.  Plus random rows (with outliers), constant rows
(zero variance), saturating rows, and rows whose square root needs 4 Newton steps with a small
``sigma`` (so one step fewer changes the outputs).  Expected codes come from
:func:`hwsim.layernorm.integer_norm`.
"""

from __future__ import annotations

import functools

import numpy as np

from hwsim.latency import int_norm_cycles
from hwsim.layernorm import calibrate_norm, float_norm, integer_norm

#: Residual-stream integer range of the real rows (2**20 = 21-bit accumulator).
Q_MAX = 2**20


@functools.cache
def smollm2_embedding_rows(tokens: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """SmolLM2-135M's first RMSNorm (``blk.0.attn_norm``): its input rows (token embeddings of a short
    text, BOS first) and γ."""
    from hwsim.models import corpus
    from hwsim.models.gguf_import import GGUFModel

    model = GGUFModel()
    tokenizer = model.tokenizer()  # also reads model.bos_id
    ids = [model.bos_id] + tokenizer.encode(corpus.text("calib", 400)).ids[:tokens - 1]
    table = model.quantized("token_embd.weight").dequantize()  # [K = hidden, N = vocab]
    rows = np.asarray(table[:, ids].T, np.float64)
    gamma = np.asarray(model.quantized("blk.0.attn_norm.weight"), np.float64)
    return rows, gamma


def _real_params(kind: str, x: np.ndarray, gamma, beta):
    scale_in = np.abs(x).max() / Q_MAX
    q = np.rint(x / scale_in).astype(np.int64)
    y = float_norm(x, kind, gamma, beta)
    params = calibrate_norm(kind, gamma, beta, in_absmax=float(np.abs(q).max()), out_scale=np.abs(y).max() / 127)
    return q, params


def _job(unit, name: str, q: np.ndarray, params, *, pattern: str = "steady", measured: bool = True) -> dict:
    """JSON-ready job: packed input beats, expected codes and the published cycle count."""
    stats = {}
    want = integer_norm(q, params, stats=stats)
    layout = {name: field for name, field in unit.in_layout}
    words = []
    for beat in unit.row_beats(q, params):
        words.append(sum((int(v) & ((1 << layout[k].width) - 1)) << layout[k].offset for k, v in beat.items()))
    timing = {"lanes": unit.lanes, "div_latency": unit.div_latency, "newton_iterations": unit.newton_iterations}
    return {"name": name, "pattern": pattern, "measured": measured, "rows": len(q), "words": words,
            "expected": want.tolist(), "newton_iterations": stats["newton_iterations"],
            "saturated": stats["x_saturated"], "published": int_norm_cycles(unit.n, unit.kind, rows=len(q), **timing)}


def _newton_row(kind: str, n: int, rng: np.random.Generator, j: int) -> np.ndarray:
    """A zero-mean row (pairs ``x, -x``) of small integers plus one pair ``e, -e`` that puts its sum of
    squares just above ``4**j``: Newton then starts at twice ``sigma`` and needs 4 updates."""
    half = rng.integers(-40, 41, n // 2)
    half[0] = 0
    rest = 2 * int(np.sum(half * half))
    target = 4**j + int(rng.integers(0, 2**j))
    half[0] = int(np.ceil(np.sqrt(max(target - rest, 0) / 2)))
    row = np.zeros(n, np.int64)
    row[0:2 * (n // 2):2], row[1:2 * (n // 2):2] = half, -half
    return row


def _newton_job(unit, rng: np.random.Generator) -> dict:
    """Rows whose square root needs 4 Newton updates with ``sigma`` about 2**9 (one update fewer leaves
    ``sigma`` off by at least one: 0.2 %, visible in some of the int8 outputs); see :func:`_newton_row`."""
    kind, n = unit.kind, unit.n
    gamma, beta = np.linspace(0.5, 1.5, n), (np.zeros(n) if kind == "layernorm" else None)
    probe = calibrate_norm(kind, gamma, beta, in_absmax=1.0, out_scale=1.0)
    rows = []
    while len(rows) < 4:
        row = _newton_row(kind, n, rng, 9)
        stats = {}
        integer_norm(row[None], probe, stats=stats)
        if stats["newton_iterations"] == 4:
            rows.append(row)
    q = np.array(rows, np.int64)
    y = float_norm(q.astype(np.float64), kind, gamma, beta)
    params = calibrate_norm(kind, gamma, beta, in_absmax=float(np.abs(q).max()), out_scale=np.abs(y).max() / 127)
    return _job(unit, "newton", q, params)


def norm_jobs(unit, rng: np.random.Generator) -> list[dict]:
    """Every job of one norm unit: real rows, random/corner rows, Newton rows, a handshake job."""
    from tile_jobs import minilm_layer0

    kind, n = unit.kind, unit.n
    jobs = []
    if kind == "layernorm" and n == 384:
        for key, tensors in minilm_layer0().items():
            if key.startswith("norm:"):
                x, gamma, beta = tensors
                q, params = _real_params(kind, x, gamma, beta)
                jobs.append(_job(unit, "real:" + key[5:], q, params))
    if kind == "rmsnorm" and n == 576:
        x, gamma = smollm2_embedding_rows()
        q, params = _real_params(kind, x, gamma, None)
        jobs.append(_job(unit, "real:smollm2.blk.0.attn_norm", q, params))
    gamma, beta = rng.normal(0, 1, n), (rng.normal(0, 0.5, n) if kind == "layernorm" else None)
    q = rng.integers(-Q_MAX, Q_MAX, (6, n))
    q[1] = q[1] // 1000
    q[2] = 777  # constant row
    q[3, :5] = [2**31 - 1, -(2**31), 2**30, -(2**30), Q_MAX * 64]  # saturate after the pre-shift
    params = calibrate_norm(kind, gamma, beta, in_absmax=float(Q_MAX), out_scale=4.0 / 127)
    jobs.append(_job(unit, "random_corners", q, params))
    jobs.append(_newton_job(unit, rng))
    jobs.append(_job(unit, "single_row", rng.integers(-Q_MAX, Q_MAX, (1, n)), params))
    jobs.append(_job(unit, "handshake", rng.integers(-Q_MAX, Q_MAX, (3, n)), params, pattern="both",
                     measured=False))
    return jobs
