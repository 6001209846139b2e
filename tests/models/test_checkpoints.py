"""GPTQ v1 / AWQ GEMM / compressed-tensors layouts written from real MiniLM weights and read back."""

import json
import struct

import numpy as np
import pytest

from hwsim.models import checkpoints as ck


@pytest.fixture(scope="module")
def linears(minilm_model):
    _, weights, _ = minilm_model
    return {"encoder.layer.0.attention.self.query": weights["encoder.layer.0.attention.self.query.weight"].T,
            "encoder.layer.0.output.dense": weights["encoder.layer.0.output.dense.weight"].T}


@pytest.mark.parametrize("layout,bits,symmetric", [("gptq", 4, False), ("gptq", 8, True), ("awq", 4, False),
                                                   ("pack-quantized", 4, True), ("pack-quantized", 4, False),
                                                   ("nvfp4-pack-quantized", 4, False)])
def test_round_trip_exact(tmp_path, linears, layout, bits, symmetric):
    path = tmp_path / "model.safetensors"
    written = ck.write_checkpoint(path, linears, layout, bits=bits, group_size=128, symmetric=symmetric)
    read = ck.read_checkpoint(path, layout, bits=bits)
    assert sorted(read) == sorted(linears)
    for name, w in linears.items():
        a, b = written[name], read[name]
        assert np.array_equal(a.codes, b.codes) and np.array_equal(a.scales, b.scales)
        assert (a.zeros is None and b.zeros is None) or np.array_equal(a.zeros, b.zeros)
        assert a.group_size == b.group_size
        deq = b.dequantize()
        assert np.array_equal(deq, a.dequantize())
        rel = np.linalg.norm(deq - w) / np.linalg.norm(w)
        assert rel < (0.02 if bits == 8 else 0.2)


def test_layout_shapes_and_orders(tmp_path, linears):
    w = linears["encoder.layer.0.attention.self.query"]  # K=N=384
    q = ck.quantize_linear(w, "gptq", bits=4, group_size=128)
    t = ck.pack_linear(q, "x")
    assert t["x.qweight"].shape == (48, 384) and t["x.qweight"].dtype == np.int32
    assert t["x.qzeros"].shape == (3, 48) and t["x.scales"].dtype == np.float16
    # low bits first along K, zeros stored minus one
    word = int(t["x.qweight"][0, 5]) & 0xFFFFFFFF
    assert [(word >> (4 * j)) & 15 for j in range(8)] == list(q.codes[:8, 5])
    assert (int(t["x.qzeros"][1, 0]) & 15) == q.zeros[1, 0] - 1
    a = ck.pack_linear(ck.quantize_linear(w, "awq", group_size=128), "y")
    assert a["y.qweight"].shape == (384, 48)
    qa = ck.quantize_linear(w, "awq", group_size=128)
    word = int(a["y.qweight"][3, 0]) & 0xFFFFFFFF
    assert [(word >> (4 * j)) & 15 for j in range(8)] == [qa.codes[3, c] for c in ck.AWQ_ORDER]
    nv = ck.pack_linear(ck.quantize_linear(w, "nvfp4-pack-quantized"), "z")
    assert nv["z.weight_packed"].shape == (384, 192) and nv["z.weight_scale"].shape == (384, 24)


def test_clamp_before_packing():
    # A GPTQ v1 zero of 0 would be stored as -1: the reference packer ORs 0xFFFFFFFF into the word
    with pytest.raises(ValueError, match=r"clamp before packing\), not -1"):
        ck.pack_bits(np.array([[3], [-1], [2], [0], [0], [0], [0], [0]]), 4, axis=0)
    w = np.zeros((128, 8))
    w[:, 0] = np.linspace(0.1, 1.0, 128)  # all-positive group: asymmetric zero point would be 0
    q = ck.quantize_linear(w, "gptq", bits=4, group_size=128)
    assert q.zeros.min() >= 1
    back = ck.unpack_linear(ck.pack_linear(q, "p"), "p", "gptq")
    assert np.array_equal(back.zeros, q.zeros) and np.array_equal(back.codes, q.codes)


def test_reader_rejects_bad_files(tmp_path):
    path = tmp_path / "bad.safetensors"
    header = json.dumps({"w": {"dtype": "I4", "shape": [2], "data_offsets": [0, 1]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0")
    with pytest.raises(ValueError, match=r"bad.safetensors: not a valid safetensors file \(.*I4"):
        ck.read_safetensors(path)
    ck.write_safetensors(tmp_path / "f.safetensors", {"a.weight": np.ones((2, 2), np.float32)})
    with pytest.raises(ValueError, match="no '\\*.qweight' tensors for layout 'gptq'"):
        ck.read_checkpoint(tmp_path / "f.safetensors", "gptq")


def test_three_bit_is_one_bit_stream():
    """AutoGPTQ's 3-bit layout: bit b of value k is bit (3k + b) of the little-endian stream of 32-bit words."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, 8, (64, 3))
    words = ck.pack_bits(values, 3, axis=0)
    assert words.shape == (6, 3) and words.dtype == np.int32
    u = words.view(np.uint32).astype(np.int64)
    for k in range(64):
        for b in range(3):
            pos = 3 * k + b
            assert np.array_equal((u[pos // 32] >> (pos % 32)) & 1, (values[k] >> b) & 1)
    assert np.array_equal(ck.unpack_bits(words, 3, axis=0), values)
    with pytest.raises(ValueError, match="multiple of 32 for 3-bit packing"):
        ck.pack_bits(values[:40], 3, axis=0)
