"""``hwsim sweep``/``simulate(None)`` and ``hwsim run`` price MiniLM from the same graph builder."""

import json

from hwsim.models import minilm
from hwsim.perf.api import simulate
from hwsim.perf.sources import DEFAULT_SHAPE, default_graph


def test_constant_config_is_the_packaged_one(minilm_model):
    config, _, _ = minilm_model
    assert minilm.MINILM_L6 == config
    raw = json.loads((minilm.model_dir() / "config.json").read_text())
    assert raw["type_vocab_size"] == minilm.TOKEN_TYPES


def test_shapes_only_graph_equals_the_weighted_graph(minilm_model):
    config, weights, _ = minilm_model
    real = minilm.build_graph(config, weights, *DEFAULT_SHAPE)
    shapes = default_graph()
    assert not shapes.weights and real.weights
    assert [(op.name, op.kind, op.inputs, op.outputs) for op in real.ops] == [
        (op.name, op.kind, op.inputs, op.outputs) for op in shapes.ops]
    assert {n: t.shape for n, t in real.tensors.items()} == {n: t.shape for n, t in shapes.tensors.items()}
    a, b = simulate(real, None).summary(), simulate(None, None).summary()
    assert (a["total_cycles"], a["macs"], a["energy_total_pj"]) == (b["total_cycles"], b["macs"], b["energy_total_pj"])
