"""The issue-9 studies (registered in :data:`hwsim.models.studies.STUDIES`); see the README for their tables.

Sizes (2 shared cores): SmolLM2 rows use 4 held-out pydoc chunks of 128 tokens (BOS + 127) and 2 calibration
chunks; every row runs the whole 30-layer model through the integer executor.
"""

from __future__ import annotations

from hwsim.models.studies import Study, register_study

SMOL_TASK = {"chunks": 4, "tokens": 128, "calib_chunks": 2}

# -- (c) SmolLM2 W8A8, static per-tensor activations -------------------------------------------------------
_STATIC = {"weights": "int8", "granularity": "channel", "activations": "int8", "act_granularity": "tensor",
           "residual_granularity": "tensor"}


def _rows_c() -> tuple:
    rtn = {"rtn": dict(_STATIC)}
    side = [{"match": "*.outlier", "rtn": {"weights": "int16", "activations": "int16", "act_granularity": "token"}}]
    return (
        ("RTN", {"recipe": [rtn]}),
        ("SmoothQuant a=0.5", {"recipe": [{"smoothquant": {"alpha": 0.5}}, rtn]}),
        ("E-LAE (GOM)", {"recipe": [{"gom": {"method": "elae"}}, rtn]}),
        ("MCOM (GOM)", {"recipe": [{"gom": {"method": "mcom"}}, rtn]}),
        ("rotation", {"recipe": [{"rotation": {}}, rtn]}),
        ("LLM.int8 (side int16)", {"recipe": [{"llm_int8": {"threshold": 6.0}}, rtn], "overrides": side}),
    )


register_study(Study(
    "c-smollm2-w8a8-static", "smollm2", _rows_c(), dict(SMOL_TASK),
    "SmolLM2-135M W8A8: int8 per-channel weights, int8 static per-tensor activations, int16 static per-tensor "
    "residual stream; outlier mitigation recipes against RTN."))


# -- (d) the k-bit grid on SmolLM2 weights (weight-only, activations float) ---------------------------------
KBIT_TYPES = (("int4", "int4"), ("fp4", "float4_e2m1fn"), ("nf4", "nf4"), ("dint4 (no zero)", "dint4"),
              ("dint4z (zero kept)", "dint4z"), ("quantile", "quantile4"))
#: Block sizes along K. 128 does not divide K = 576 (q/k/v/gate/up): the "128" column uses 192, the
#: nearest size dividing both 576 and 1536; 1024 (> 576) is per output channel.
KBIT_BLOCKS = (("g32", "group", 32), ("g64", "group", 64), ("g192 (for 128)", "group", 192),
               ("per-channel (for 1024)", "channel", None))


#: The tied embedding / lm head (49152 x 576) keeps its stored Q8_0 blocks in every k-bit row.
HEAD_AS_STORED = [{"match": "output", "rtn": {"weights": "keep"}}]


def _rows_d() -> tuple:
    rows = []
    for tname, fmt in KBIT_TYPES:
        for bname, gran, gs in KBIT_BLOCKS:
            rtn = {"weights": fmt, "granularity": gran, "group_size": gs, "activations": None}
            rows.append((f"{tname} {bname}", {"recipe": [{"rtn": rtn}], "overrides": HEAD_AS_STORED}))
    return tuple(rows)


register_study(Study(
    "d-smollm2-kbit-grid", "smollm2", _rows_d(), {"chunks": 2, "tokens": 64, "calib_chunks": 1},
    "SmolLM2-135M weight-only 4-bit data types x block sizes for the 210 block linears (RTN, absmax scales per "
    "block; activations float; the tied head keeps its stored Q8_0). "
    "The float reference is the GGUF model as stored (Q4_1 linears, Q8_0 embedding/head), dequantized."))


# -- (e) FP4 / FP8 with and without the FPQ format + maximum search (MiniLM) -------------------------------
FP8 = ["float8_e4m3fn", "float8_e5m2"]
FP4 = ["float4_e2m1fn", "float4_e3m0", "float4_e1m2"]
#: Clipping ratios of the study's FPQ search (a shorter grid than the step's default keeps a row in minutes).
FPQ_RATIOS = [1.0, 0.8, 0.6, 0.4]


def _rows_e() -> tuple:
    rows = []
    for label, w, a, wf, af in (("W8A8 FP8", "float8_e4m3fn", "float8_e4m3fn", FP8, FP8),
                                ("W4A8 FP4/FP8", "float4_e2m1fn", "float8_e4m3fn", FP4, FP8),
                                ("W4A4 FP4", "float4_e2m1fn", "float4_e2m1fn", FP4, FP4)):
        rtn = {"rtn": {"weights": w, "granularity": "channel", "activations": a}}
        rows.append((f"{label} RTN (E4M3/E2M1, max)", {"recipe": [rtn]}))
        fpq = {"fpq": {"weight_formats": wf, "act_formats": af, "ratios": FPQ_RATIOS}}
        rows.append((f"{label} FPQ search", {"recipe": [rtn, fpq]}))
        shift = {"fpq_shift": {}}  # pre-shifted per-channel exponent bias of the norm outputs
        rows.append((f"{label} exponent-bias shift, RTN", {"recipe": [shift, rtn]}))
        if label != "W8A8 FP8":
            rows.append((f"{label} exponent-bias shift + FPQ search", {"recipe": [shift, rtn, fpq]}))
    return tuple(rows)


register_study(Study(
    "e-minilm-fp-fpq", "minilm", _rows_e(), {"sentences": 8, "calib_sentences": 4},
    "MiniLM-L6 floating-point W/A formats: fixed E4M3 / E2M1 with absmax scales vs FPQ's per-layer search of "
    "the format and the clipping maximum (3 alternating rounds); per-channel weights, static per-tensor "
    "activations, int16 residual; with and without FPQ's pre-shifted per-channel exponent bias of the norm outputs "
    "(fpq_shift: power-of-two channel scales folded into LayerNorm γ/β and the weight rows)."))


# -- dINT readings through the same recipes (MiniLM W4A8) ---------------------------------------------------
def _rows_dint() -> tuple:
    rows = []
    for fmt in ("int4", "dint4", "dint4z"):
        for gname, gran, gs in (("per-channel", "channel", None), ("g32", "group", 32)):
            rtn = {"rtn": {"weights": fmt, "granularity": gran, "group_size": gs, "activations": "int8"}}
            aqas = {"aqas": {"weights": fmt, "granularity": gran, "group_size": gs, "activations": "int8"}}
            rows.append((f"{fmt} {gname} RTN", {"recipe": [rtn]}))
            rows.append((f"{fmt} {gname} AQAS", {"recipe": [aqas, rtn]}))
            if fmt != "int4":  # dINT's special value α searched per layer (grid 0.25 .. 0.75)
                rows.append((f"{fmt} {gname} RTN + α search", {"recipe": [rtn, {"dint_alpha": {}}]}))
                rows.append((f"{fmt} {gname} AQAS + α search", {"recipe": [aqas, rtn, {"dint_alpha": {}}]}))
    return tuple(rows)


register_study(Study(
    "dint-minilm-w4a8", "minilm", _rows_dint(), {"sentences": 8, "calib_sentences": 8},
    "MiniLM-L6 W4A8 (int8 static per-tensor activations): INT4 vs dINT4 read two ways (dint4: codes 0/-8 are "
    "±α, no zero; dint4z: zero kept, ±7 are ±α), each with RTN and with AQAS scaling, and for dINT with the special "
    "value α searched per layer (dint_alpha step, α ∈ {0.25, 0.375, 0.5, 0.625, 0.75})."))
