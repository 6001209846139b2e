"""GEMM jobs for the systolic tile bench: real MiniLM-L6 tiles, random and adversarial tiles, prepared
on the pytest side with the golden model (``hwsim.gemm``) and the cycle model (``hwsim.perf.timing``).

A job is a GEMM ``A[M, K] @ W[K, N]`` cut into folds of the tile (``R x C``; zero-padded), in the cycle
model's fold order (column folds outer, row folds inner).  For each fold the expected output rows come
from :func:`hwsim.gemm.gemm_ex` with the tile's accumulator (exact :func:`hwsim.gemm.gemm_fixed` for
exact registers); the per-column ``overflow`` flags from the same register rule applied addition by
addition; ``special`` from the format specs.  Jobs are written to JSON for the cocotb side (input beats
as integers, expectations as lists), so the simulator process does no golden-model work.
"""

from __future__ import annotations

import functools

import numpy as np

from hwsim.gemm import AccumulatorSpec, gemm_ex, gemm_fixed, mac_product_fixed
from hwsim.perf.timing import compute_cycles, map_gemm

#: Real layers the tiles are cut from: (graph op, activation tensor) of MiniLM-L6's first layer.
REAL_LAYERS = ("encoder.layer.0.attention.self.query", "encoder.layer.0.output.dense")
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@functools.cache
def minilm_layer0() -> dict:
    """Float tensors of MiniLM-L6's first layer on one sentence (embedded weights, float graph).

    Returns ``{op name: (activation [tokens, K], weight [K, N])}`` for :data:`REAL_LAYERS` and
    ``{"norm:" + op name: (input rows [tokens, N], gamma, beta)}`` for the layer's LayerNorms.
    """
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.models.minilm import Tokenizer, build_graph, load_weights

    cfg, weights = load_weights()
    ids, mask = Tokenizer()([SENTENCE])
    graph = build_graph(cfg, weights, 1, ids.shape[1], layers=1)
    env = run_graph(graph, {"input_ids": ids, "attention_mask": mask}, FloatBackend(), keep=True)
    out = {}
    for op in graph.ops:
        if op.name in REAL_LAYERS:
            x, w = env[op.inputs[0]], graph.weights[op.inputs[1]]
            out[op.name] = (np.asarray(x[0], np.float64), np.asarray(w, np.float64))
        if op.kind == "layernorm":
            x, gamma, beta = (env[t] for t in op.inputs)
            out["norm:" + op.name] = (np.asarray(x[0], np.float64), np.asarray(gamma, np.float64),
                                      np.asarray(beta, np.float64))
    return out


def _accumulator(tile) -> AccumulatorSpec:
    return AccumulatorSpec(bits=tile.acc_bits, overflow=tile.overflow_mode)


def _fold_expectation(tile, a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected (acc [M, C], special bits [M], overflow bits [M]) of one fold ``a [M, R] @ w [R, C]``."""
    af, wf, acc = tile.act_format, tile.weight_format, _accumulator(tile)
    exact, _ = gemm_fixed(a, af, w, wf)
    if af.kind == "int" and wf.kind == "int":
        values = gemm_ex(a, af, w, wf, accumulator=acc).values
    else:  # exact register (sized for R products): the exact sums
        values = np.asarray(exact, dtype=np.int64)
    products, _ = mac_product_fixed(a[:, :, None], af, w[None, :, :], wf)
    partial = np.zeros((a.shape[0], w.shape[1]), np.int64)
    overflow = np.zeros(partial.shape, bool)
    for k in range(a.shape[1]):  # the register rule, addition by addition (k = 0 .. R-1, top to bottom)
        total = partial + products[:, k, :]
        overflow |= (total < acc.lo) | (total > acc.hi)
        partial = acc.wrap(total) if acc.overflow == "wrap" else np.clip(total, acc.lo, acc.hi)
    if not np.array_equal(partial, values):
        raise AssertionError("bench register model disagrees with hwsim.gemm.gemm_ex")
    special = af.is_special(a)[:, :, None] | wf.is_special(w)[None, :, :]
    weights = 1 << np.arange(w.shape[1])
    return values, special.any(axis=1).astype(np.int64) @ weights, overflow.astype(np.int64) @ weights


def _pack(codes: np.ndarray, bits: int) -> int:
    return sum(int(c) << (i * bits) for i, c in enumerate(codes))


def make_job(tile, name: str, a: np.ndarray, w: np.ndarray, *, pattern: str = "steady", measured: bool = True,
             bins: dict | None = None) -> dict:
    """JSON-ready job: input beats, expected output rows and the model's cycles for ``a @ w``."""
    r, c = tile.rows, tile.cols
    m, k = a.shape
    n = w.shape[1]
    fm = map_gemm(m, k, n, r, c, "ws")
    a_pad = np.zeros((m, fm.row_folds * r), np.int64)
    a_pad[:, :k] = a
    w_pad = np.zeros((fm.row_folds * r, fm.col_folds * c), np.int64)
    w_pad[:k, :n] = w
    words, acc, special, overflow = [], [], [], []
    last = (1 << (r * tile.act_format.bits + c * tile.weight_format.bits))
    w_shift = r * tile.act_format.bits
    for cf in range(fm.col_folds):
        for rf in range(fm.row_folds):
            af = a_pad[:, rf * r:(rf + 1) * r]
            wf = w_pad[rf * r:(rf + 1) * r, cf * c:(cf + 1) * c]
            words += [_pack(wf[row], tile.weight_format.bits) << w_shift for row in reversed(range(r))]
            words += [_pack(row, tile.act_format.bits) | (last if i == m - 1 else 0) for i, row in enumerate(af)]
            values, sp, ov = _fold_expectation(tile, af, wf)
            acc.append(values)
            special.append(sp)
            overflow.append(ov)
    acc_all = np.concatenate(acc)
    return {"name": name, "pattern": pattern, "measured": measured, "m": m, "k": k, "n": n,
            "folds": fm.folds, "row_folds": fm.row_folds, "words": words, "acc": acc_all.tolist(),
            "special": np.concatenate(special).tolist(), "overflow": np.concatenate(overflow).tolist(),
            "layer": (gemm_fixed(a, tile.act_format, w, tile.weight_format)[0].astype(np.int64).tolist()
                      if name.startswith("real") else None),
            "model": {mode: compute_cycles(fm, mode) for mode in ("tile", "scalesim", "pipelined")},
            "bins": bins or {}}


def _codes(fmt, which: str, shape) -> np.ndarray:
    value = {"max": fmt.max, "min": fmt.min}[which]
    return np.full(shape, int(fmt.encode(np.array([value]))[0]), np.int64)


def tile_jobs(tile, rng: np.random.Generator) -> list[dict]:
    """Every job of one tile configuration (see the module docstring)."""
    r, c = tile.rows, tile.cols
    af, wf = tile.act_format, tile.weight_format
    jobs = []
    for layer in REAL_LAYERS:  # real codes: per-tensor quantization of the whole layer, one tile cut out
        from hwsim.quantize import quantize

        x, w = minilm_layer0()[layer]
        a_codes, w_codes = quantize(x, af).codes, quantize(w, wf).codes
        for k0, n0 in ((64, 128), (200, 8)):
            a = np.asarray(a_codes[:, k0:k0 + 2 * r], np.int64)
            b = np.asarray(w_codes[k0:k0 + 2 * r, n0:n0 + 2 * c], np.int64)
            jobs.append(make_job(tile, f"real:{layer}[{k0}:,{n0}:]", a, b,
                                 bins={"real_vectors": a.shape[0] * b.shape[1]}))

    def rand(shape, fmt):
        return rng.integers(0, 1 << fmt.bits, shape)

    jobs.append(make_job(tile, "random_partial", rand((5, r + 1), af), rand((r + 1, c - 1), wf),
                         bins={"partial_fold": 1}))
    jobs.append(make_job(tile, "single_row", rand((1, r), af), rand((r, c), wf), bins={"single_row": 1}))
    jobs.append(make_job(tile, "long", rand((3 * r, r), af), rand((r, 2 * c), wf)))
    jobs.append(make_job(tile, "random_bulk", rand((64, 2 * r), af), rand((2 * r, 2 * c), wf),
                         bins={"random_vectors": 64 * 2 * c}))
    a = np.concatenate([_codes(af, "max", (2, r)), _codes(af, "min", (2, r)), rand((2, r), af)])
    w = np.concatenate([_codes(wf, "max", (r, c)), _codes(wf, "min", (r, c))], axis=1)
    jobs.append(make_job(tile, "adversarial", a, w, bins={"operand_extremes": 1}))
    jobs.append(make_job(tile, "handshake", rand((7, 2 * r), af), rand((2 * r, c), wf), pattern="both",
                         measured=False))
    return jobs
