"""Built-in LLM configs against published parameter counts; reading a Hugging Face config.json."""

import json

import pytest

from hwsim.errors import ConfigError
from hwsim.llm.config import builtin_names, load_llm_config, parameter_count
from hwsim.llm.graph import build_llm_graph

#: Published parameter counts: the safetensors totals on each model's Hugging Face page
#: (meta-llama/Llama-2-7b-hf, meta-llama/Meta-Llama-3-8B, mistralai/Mistral-7B-v0.1, Qwen/Qwen2.5-0.5B,
#: HuggingFaceTB/SmolLM2-135M, facebook/opt-125m, openai-community/gpt2, google-bert/bert-base-uncased).
PUBLISHED = {
    "llama-2-7b": 6_738_415_616,
    "llama-3-8b": 8_030_261_248,
    "mistral-7b": 7_241_732_096,
    "qwen2.5-0.5b": 494_032_768,
    "smollm2-135m": 134_515_008,
    "opt-125m": 125_239_296,
    "gpt2": 124_439_808,
    "bert-base": 109_482_240,
}


def test_every_builtin_has_a_published_count():
    assert set(builtin_names()) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_builtin_parameter_count_within_one_percent(name):
    assert parameter_count(load_llm_config(name)) == pytest.approx(PUBLISHED[name], rel=0.01)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_graph_weights_add_up_to_the_parameter_count(name):
    """The graph's weight tensors (views excluded) hold exactly the parameters the formula counts."""
    cfg = load_llm_config(name)
    g = build_llm_graph(cfg, "prefill", seq_len=8)
    produced = {o for op in g.ops for o in op.outputs}
    assert sum(t.size for t in g.tensors.values() if t.is_weight and t.name not in produced) == parameter_count(cfg)


def test_hf_config_json_is_read_like_the_builtin(tmp_path):
    full = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
            "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "vocab_size": 49152, "tie_word_embeddings": True, "rope_theta": 100000,
            "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16", "head_dim": None}
    folder = tmp_path / "SmolLM2-135M"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(full))
    cfg = load_llm_config(folder)
    assert cfg.name == "SmolLM2-135M" and cfg.kv_groups == 3 and cfg.head_dim == 64
    assert parameter_count(cfg) == PUBLISHED["smollm2-135m"]


def test_bad_configs_name_the_key(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"model_type": "llama", "hidden_size": -1, "num_attention_heads": 8,
                               "num_hidden_layers": 2, "intermediate_size": 64, "vocab_size": 100}))
    with pytest.raises(ConfigError, match="config.hidden_size: expected a positive integer"):
        load_llm_config(bad)
    bad.write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ConfigError, match="config.model_type: expected one of"):
        load_llm_config(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_llm_config(bad)
    with pytest.raises(ValueError, match="not a built-in"):
        load_llm_config("llama-9-1t")
