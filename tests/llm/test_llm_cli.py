"""``hwsim run --workload llm:...``: the perf-only LLM path of the CLI."""

import json
from pathlib import Path

from hwsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "examples" / "arch" / "llm_int8_128x128_ws_1mib.yaml"


def test_llm_decode_run_writes_metrics_and_resolved_arch(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--workload", "llm:smollm2-135m", "--phase", "decode", "--kv-len", "256", "--batch", "4",
                 "--kv-format", "int4", "--arch", str(ARCH), "--out", str(out), "--no-report"]) == 0
    text = capsys.readouterr().out
    assert "decode: 4 tokens" in text and "tokens/s" in text and "weights+KV DRAM" in text
    s = json.loads((out / "summary.json").read_text())
    assert s["llm_workload"] == {"model": "smollm2-135m", "family": "llama", "phase": "decode", "batch": 4,
                                 "new_tokens_per_sequence": 1, "attention_span": 257, "kv_format": "int4"}
    assert s["llm"]["tokens"] == 4 and s["llm"]["ttft_s"] is None
    assert s["architecture"]["array"] == {"rows": 128, "cols": 128, "dataflow": "ws"}
    per_op = json.loads((out / "per_op.json").read_text())
    assert any(r["kind"] == "kv_write" or "_cache_write" in r["fused_ops"] for r in per_op)
    assert all("mapping" in r for r in per_op)


def test_llm_prefill_from_a_config_json(tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 500}))
    assert main(["run", "--workload", f"llm:{cfg}", "--phase", "prefill", "--seq-len", "32"]) == 0
    assert "prefill: 32 tokens" in capsys.readouterr().out


def test_llm_options_need_an_llm_workload(capsys):
    wl = ROOT / "examples" / "workloads" / "minilm_l6_seq128.yaml"
    assert main(["run", "--workload", str(wl), "--phase", "decode"]) == 2
    assert "apply to --workload llm:NAME runs only" in capsys.readouterr().err
    assert main(["run", "--workload", "llm:no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "not a built-in" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
