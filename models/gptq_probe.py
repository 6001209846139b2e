"""Probe of GPTQ's calibration on SmolLM2 weight-only: perplexity for one Hessian setting.

Reproduces the "what moves W3 g192 GPTQ" table of study (b) in the README. Every ``blk.*`` linear is
quantized (the tied head keeps its stored blocks, as in the study) with :func:`hwsim.ptq.gptq.gptq_quantize`
or round-to-nearest, the dequantized weights are written into the float graph, and the held-out perplexity
is that of the float executor (activations stay float: the study's weight-only path, whose numbers it
matches). What it varies, beyond the GPTQ step's own ``damp``/``act_order``:

* ``--calib N``: calibration chunks (of ``--tokens`` tokens) in ``H = 2 XᵀX / rows``;
* ``--hessian no-bos``: leave the BOS row (position 0) out of ``H`` only (not out of the forward pass);
* ``--sequential``: ``H`` of block ``i`` from the model whose blocks ``< i`` are already quantized (the
  reference implementations' order) instead of the float model (the recipe step's).

::

    python -m hwsim.models.gptq_probe --calib 64 --damp 0.01
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def hessians(graph, batches, inputs: set, no_bos: bool) -> dict:
    """``H = 2 XᵀX / rows`` (float64) of each tensor in ``inputs`` over the float run of ``batches``."""
    from hwsim.float_executor import FloatBackend, run_graph

    acc = {}

    def observe(op, value):
        name = op.outputs[0]
        if name in inputs:
            x = np.asarray(value, np.float64)
            x = (x[..., 1:, :] if no_bos else x).reshape(-1, x.shape[-1])
            xtx, rows = acc.get(name, (0.0, 0))
            acc[name] = (xtx + x.T @ x, rows + len(x))

    for feeds in batches:
        run_graph(graph, feeds, FloatBackend(), observer=observe)
    return {name: 2.0 * xtx / rows for name, (xtx, rows) in acc.items()}


def quantize_blocks(task, quantizer, *, method: str, damp: float, act_order: bool, no_bos: bool,
                    sequential: bool):
    """The task's graph with every ``blk.*`` linear weight replaced by its dequantized quantization."""
    from hwsim.ptq.gptq import gptq_quantize
    from hwsim.qspec import weight_values

    g0 = task.graph
    linears = [op for op in g0.ops if op.kind == "linear" and op.name.startswith("blk.")]
    g = g0.edit()
    if method == "rtn":
        stages = []
        for op in linears:
            w = g0.weights[op.inputs[1]]
            g.set_weight(op.inputs[1], quantizer.dequantize(w).astype(w.dtype))
    else:
        blocks = sorted({op.name.split(".")[1] for op in linears}, key=int)
        stages = [[op for op in linears if op.name.split(".")[1] == b] for b in blocks] if sequential else [linears]
    for stage in stages:
        h = hessians(g, task.calibration, {op.inputs[0] for op in stage}, no_bos)
        for op in stage:
            w = g0.weights[op.inputs[1]]
            spec = gptq_quantize(w, h[op.inputs[0]], quantizer, damp=damp, act_order=act_order)
            g.set_weight(op.inputs[1], weight_values(spec).astype(w.dtype))
    return g


def perplexity(task, graph) -> tuple[float, float]:
    """Held-out perplexity of ``graph`` run in float, and its standard error across chunks."""
    from hwsim.float_executor import FloatBackend, run_graph
    from hwsim.models.run import nll, perplexity_stats

    out = graph.outputs[0]
    return perplexity_stats([nll(run_graph(graph, f, FloatBackend())[out], f["input_ids"])[0]
                             for f in task.evaluation])


def main(argv=None) -> int:
    from hwsim.models.run import smollm2_task
    from hwsim.ptq.weight_quantizer import WeightQuantizer
    from hwsim.threads import limit_blas_threads

    limit_blas_threads()
    ap = argparse.ArgumentParser(prog="python -m hwsim.models.gptq_probe", description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("gptq", "rtn"), default="gptq")
    ap.add_argument("--weights", default="int3", help="weight format (default int3)")
    ap.add_argument("--group-size", type=int, default=192, help="group along K; 0 = per output channel")
    ap.add_argument("--calib", type=int, default=4, help="calibration chunks")
    ap.add_argument("--chunks", type=int, default=4, help="held-out chunks")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per chunk (BOS + text)")
    ap.add_argument("--layers", type=int, default=None, help="first N blocks only (default all)")
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--no-act-order", action="store_true")
    ap.add_argument("--hessian", choices=("all", "no-bos"), default="all")
    ap.add_argument("--sequential", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    task = smollm2_task(chunks=a.chunks, tokens=a.tokens, layers=a.layers, calib_chunks=a.calib)
    gran = "group" if a.group_size else "channel"
    quantizer = WeightQuantizer(a.weights, gran, a.group_size or None)
    graph = quantize_blocks(task, quantizer, method=a.method, damp=a.damp, act_order=not a.no_act_order,
                            no_bos=a.hessian == "no-bos", sequential=a.sequential)
    ppl, se = perplexity(task, graph)
    ref, _ = perplexity(task, task.graph)
    print(f"{a.method} {a.weights} {gran}{a.group_size or ''} calib={a.calib}x{a.tokens} damp={a.damp} "
          f"act_order={not a.no_act_order} hessian={a.hessian} sequential={a.sequential}: "
          f"perplexity {ppl:.4g} ± {se:.3g} (float {ref:.4g}); {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
