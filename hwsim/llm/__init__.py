"""LLM workloads from a model's shapes: configs (:mod:`hwsim.llm.config`), prefill/decode graphs
(:mod:`hwsim.llm.graph`) and per-phase metrics (:mod:`hwsim.llm.metrics`)."""
