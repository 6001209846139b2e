"""Inputs that used to grow memory without bound: refused before allocating, or streamed.

The CLI cases run in a subprocess under an address-space limit (``RLIMIT_AS``), so an unbounded
allocation would fail there instead of exhausting the machine.
"""

from __future__ import annotations

import struct
import time
import tracemalloc

import pytest
from robust_helpers import ADDRESS_SPACE_LIMIT, assert_one_line_error

from hwsim.errors import ConfigError
from hwsim.limits import LimitError
from hwsim.perf.scalesim_dram import dram_report
from hwsim.perf.scalesim_io import ScaleSimConfig, TopologyLayer, read_topology


def test_datapath_huge_shape_refused_quickly(hwsim):
    started = time.monotonic()
    done = hwsim(["datapath", "--m", 100000, "--k", 100000], limit=ADDRESS_SPACE_LIMIT)
    assert_one_line_error(done, "datapath --m 100000 --k 100000", "HWSIM_MAX_MEMORY_BYTES")
    assert time.monotonic() - started < 20


def test_memory_budget_follows_the_address_space_limit(hwsim):
    # 2,000 x 20,000 needs ~ 5.5 GB of working memory: over half a 3 GiB address space
    done = hwsim(["datapath", "--m", 2000, "--k", 20000, "--n", 20000], limit=ADDRESS_SPACE_LIMIT)
    assert_one_line_error(done, "exceeds the limit")


def test_sweep_of_ten_million_points_refused(tmp_path, hwsim):
    sweep = tmp_path / "s.yaml"
    axes = "".join(f"  array.rows: {list(range(1, 101))}\n".replace("array.rows", key)
                   for key in ("array.rows", "array.cols", "clock_mhz", "dram.latency_cycles")[:4])
    sweep.write_text("name: huge\ngrid:\n" + axes)  # 100^4 = 10^8 points
    done = hwsim(["sweep", sweep, "--out", tmp_path / "out"], limit=ADDRESS_SPACE_LIMIT)
    assert_one_line_error(done, "sweep.grid", "HWSIM_MAX_SWEEP_POINTS")
    assert not (tmp_path / "out").exists()


def test_depthwise_row_with_1e8_channels_refused(tmp_path):
    path = tmp_path / "dw.csv"
    path.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                    "Num Filter, Strides,\nconv_DP, 10, 10, 3, 3, 100000000, 1, 1,\n")
    with pytest.raises(ConfigError, match="HWSIM_MAX_TOPOLOGY_LAYERS"):
        read_topology(path)


def test_scalesim_dims_beyond_2_53_refused_not_rounded(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text(f"Layer, M, N, K,\nx, {2**53 + 1}, 4, 4,\n")
    with pytest.raises(ConfigError, match="line 2: sizes must be positive integers <="):
        read_topology(path)


def test_exact_replay_memory_does_not_grow_with_the_layer():
    cfg = ScaleSimConfig(run_name="t", rows=16, cols=16, ifmap_kb=64, filter_kb=64, ofmap_kb=32, dataflow="os")
    peaks = []
    for n in (128, 512):
        layer = TopologyLayer("g", n, n, 1, n, 1, n)
        tracemalloc.start()
        dram_report(layer, cfg)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 64x the work, same order of memory: the operand footprint (8 B per element) plus one fold
    assert peaks[1] < 8 * 512 * 512 * 3 + (8 << 20), peaks


def test_exact_replay_over_budget_is_refused_before_running(monkeypatch):
    monkeypatch.setenv("HWSIM_MAX_REPLAY_ELEMENTS", "1000")
    cfg = ScaleSimConfig(run_name="t", rows=8, cols=8, ifmap_kb=64, filter_kb=64, ofmap_kb=32, dataflow="ws")
    with pytest.raises(LimitError, match="HWSIM_MAX_REPLAY_ELEMENTS"):
        dram_report(TopologyLayer("g", 64, 64, 1, 64, 1, 64), cfg)


def _gguf_bomb(path):
    key = b"general.x"
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", len(key)) + key
    data += struct.pack("<IIQ", 9, 4, 1 << 40)  # an ARRAY of UINT32 claiming 2^40 elements
    path.write_bytes(data + b"\0" * (68 - len(data)))


def test_68_byte_gguf_claiming_2_40_elements(tmp_path):
    pytest.importorskip("gguf")
    import subprocess
    import sys

    bomb = tmp_path / "bomb.gguf"
    _gguf_bomb(bomb)
    assert bomb.stat().st_size == 68
    code = ("import sys\n"
            "from hwsim.models.gguf_import import GGUFModel\n"
            "try:\n"
            f"    GGUFModel({str(bomb)!r})\n"
            "except ValueError as exc:\n"
            "    print(exc); sys.exit(2)\n")
    from robust_helpers import _limit_preexec

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=_limit_preexec(ADDRESS_SPACE_LIMIT))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "claims 1,099,511,627,776 elements" in done.stdout and str(bomb) in done.stdout


def test_safetensors_header_length_2_63_refused(tmp_path):
    pytest.importorskip("safetensors")
    from hwsim.models.checkpoints import read_safetensors

    path = tmp_path / "bad.safetensors"
    path.write_bytes((2**63).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        read_safetensors(path)


@pytest.mark.parametrize("offsets", [[-1, 1], [0, 4]], ids=["negative", "past-end"])
def test_safetensors_bad_offsets_refused(tmp_path, offsets):
    pytest.importorskip("safetensors")
    import json

    from hwsim.models.checkpoints import read_safetensors

    header = json.dumps({"w": {"dtype": "U8", "shape": [offsets[1] - offsets[0]], "data_offsets": offsets}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        read_safetensors(path)


def test_safetensors_overlapping_offsets_refused(tmp_path):
    pytest.importorskip("safetensors")
    import json

    from hwsim.models.checkpoints import read_safetensors

    header = json.dumps({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                         "b": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0\0")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        read_safetensors(path)
