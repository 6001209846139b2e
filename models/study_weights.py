"""The issue-9 weight-quantizer studies (a) and (b), registered in :data:`hwsim.models.studies.STUDIES`.

* ``a-minilm-ptq``: MiniLM-L6 W8A8 / W4A8 / W4A4 (int weights per output channel, int activations static
  per tensor, int16 residual stream) x the methods of :data:`MINILM_METHODS` (RTN, SmoothQuant α 0.5 and
  α searched per norm with both quantizers in the loop, GPTQ, AWQ;
  add a method there to add a row for every precision). 16 held-out sentences, 16 calibration sentences.
* ``b-smollm2-weight-only``: SmolLM2-135M weight-only int4 per output channel, int4 and int3 in groups along K
  x {RTN, GPTQ, AWQ}. Activations stay float (``activations: null``: each linear runs in float on the
  dequantized weights; the cost model prices the unquantized inputs at the architecture's defaults). Groups:
  128 does not divide K = 576 (q/k/v/o/gate/up), so the "g128" rows use g192, the nearest size dividing both
  576 and 1536 (as study (d)). The tied head ``output`` keeps its stored Q8_0 blocks; the float reference is the
  GGUF model as stored (Q4_1 linears), dequantized. 4 held-out pydoc chunks of 128 tokens; 64 calibration
  chunks of 128 tokens (8192 rows, > 5 K for K = 1536: with 4 chunks, 512 rows < K, GPTQ fits the
  calibration set and W3 g192 GPTQ scored 2072 against RTN's 817; README, study (b)).
"""

from __future__ import annotations

from hwsim.models.studies import Study, register_study


def _rtn(w: str, a: str | None, **extra) -> dict:
    return {"rtn": {"weights": w, "granularity": "channel", "activations": a, **extra}}


def _keep(a: str | None) -> dict:
    return {"rtn": {"weights": "keep", "activations": a}}


#: label -> (weight format, activation format) -> recipe steps. Extend to add rows to study (a).
MINILM_METHODS = {
    "RTN": lambda w, a: [_rtn(w, a)],
    "SmoothQuant a=0.5": lambda w, a: [{"smoothquant": {"alpha": 0.5}}, _rtn(w, a)],
    "SmoothQuant a=search": lambda w, a: [{"smoothquant": {"alpha": "search", "search_activations": a,
                                                           "search_weights": w}}, _rtn(w, a)],
    "GPTQ": lambda w, a: [{"gptq": {"weights": w, "granularity": "channel"}}, _keep(a)],
    "AWQ": lambda w, a: [{"awq": {"weights": w, "granularity": "channel"}}, _keep(a)],
}
MINILM_PRECISIONS = (("W8A8", "int8", "int8"), ("W4A8", "int4", "int8"), ("W4A4", "int4", "int4"))
MINILM_TASK = {"sentences": 16, "calib_sentences": 16}


def minilm_rows(methods=None) -> tuple:
    """``(label, recipe)`` rows of study (a) for ``methods`` (default :data:`MINILM_METHODS`)."""
    methods = MINILM_METHODS if methods is None else methods
    return tuple((f"{p} {m}", {"recipe": build(w, a)}) for p, w, a in MINILM_PRECISIONS
                 for m, build in methods.items())


SMOL_WEIGHT_TASK = {"chunks": 4, "tokens": 128, "calib_chunks": 64}
#: (label, format, granularity, group size); g192 stands for g128 (see the module docstring).
SMOL_WEIGHT_FORMATS = (("W4 per-channel", "int4", "channel", None), ("W4 g192 (for g128)", "int4", "group", 192),
                       ("W3 g192 (for g128)", "int3", "group", 192))


def smollm2_weight_rows() -> tuple:
    rows = []
    for label, fmt, gran, gs in SMOL_WEIGHT_FORMATS:
        q = {"weights": fmt, "granularity": gran, "group_size": gs}
        for method, steps, step_name in (
                ("RTN", [{"rtn": {**q, "activations": None}}], "rtn"),
                ("GPTQ", [{"gptq": q}, _keep(None)], "gptq"),
                ("AWQ", [{"awq": q}, _keep(None)], "awq")):
            rows.append((f"{label} {method}", {"recipe": steps,
                                               "overrides": [{"match": "output", step_name: {"weights": "keep"}}]}))
    return tuple(rows)


register_study(Study(
    "a-minilm-ptq", "minilm", minilm_rows(), dict(MINILM_TASK),
    "MiniLM-L6: int weights per output channel, int activations static per tensor (int16 residual stream); "
    "cosine of the sentence embeddings vs float over 16 held-out sentences."))

register_study(Study(
    "b-smollm2-weight-only", "smollm2", smollm2_weight_rows(), dict(SMOL_WEIGHT_TASK),
    "SmolLM2-135M weight-only (float activations): int4 per channel, int4/int3 in groups of 192 along K "
    "(128 does not divide K = 576); head kept as stored (Q8_0). Perplexity on 4 held-out pydoc chunks of 128 "
    "tokens (standard error across chunks); calibration 64 chunks of 128 tokens."))
