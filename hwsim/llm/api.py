"""Python API of LLM workloads: ``simulate_llm("llama-2-7b", arch, phase="decode", kv_len=2048)``.

>>> from hwsim.llm.api import simulate_llm
>>> r = simulate_llm("smollm2-135m", None, phase="decode", kv_len=64)
>>> r.summary()["llm"]["phase"], r.summary()["llm"]["tokens"]
('decode', 1)
"""

from __future__ import annotations

from hwsim.llm.config import load_llm_config
from hwsim.llm.graph import build_llm_graph, phase_tokens
from hwsim.llm.metrics import causal_masked_macs, metrics_text, phase_metrics
from hwsim.perf.api import simulate
from hwsim.perf.arch import as_arch

#: prefix of ``hwsim run --workload`` values naming an LLM (``llm:llama-2-7b``, ``llm:path/config.json``)
WORKLOAD_PREFIX = "llm:"


def simulate_llm(model, arch=None, *, phase: str = "prefill", batch: int = 1, seq_len: int = 2048,
                 kv_len: int = 2048, kv_format: str | None = None, mode: str | None = None):
    """Simulate one ``phase`` step of ``model`` (built-in name, config.json path or LLMConfig) on ``arch``.

    ``seq_len`` is the prompt length of ``prefill``; ``kv_len`` the cached tokens of ``decode``;
    ``kv_format`` the KV cache's number format (default: the PE activation format). Returns the
    :class:`~hwsim.perf.results.RunResult` with ``summary()["llm"]`` (:mod:`hwsim.llm.metrics`) and
    the model/phase parameters in ``summary()["llm_workload"]``.
    """
    cfg = load_llm_config(model)
    arch = as_arch(arch)
    if kv_format is not None:
        from hwsim.perf.format_info import known_format

        if not known_format(kv_format):
            raise ValueError(f"kv_format: unknown number format, expected e.g. 'int8', 'int4' or "
                             f"'float8_e4m3fn', not {kv_format!r}")
    graph = build_llm_graph(cfg, phase, batch=batch, seq_len=seq_len, kv_len=kv_len, kv_format=kv_format)
    s, t = phase_tokens(cfg, phase, seq_len, kv_len)
    result = simulate(graph, arch, mode=mode)
    result.extra["llm_workload"] = {
        "model": cfg.name, "family": cfg.family, "phase": phase, "batch": batch, "new_tokens_per_sequence": s,
        "attention_span": t, "kv_format": kv_format or arch.pe.activation_format,
    }
    result.extra["llm"] = phase_metrics(result, arch, phase=phase, tokens=batch * s,
                                        masked_macs=causal_masked_macs(graph))
    result.extra_text = f"  LLM {cfg.name} ({cfg.family}), batch {batch}\n" + metrics_text(result.extra["llm"])
    return result
