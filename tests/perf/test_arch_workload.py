"""Architecture and workload specs: examples load, bad files report every problem with its key path."""

from pathlib import Path

import pytest
import yaml

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.perf.arch import arch_from_dict, default_arch, load_arch
from hwsim.perf.graph_costs import workload_from_graph
from hwsim.perf.sources import default_workload, load_workload
from hwsim.perf.workload import GemmOp, conv_to_gemm, workload_from_dict

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ARCHS = sorted((ROOT / "examples" / "arch").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_ARCHS, ids=lambda p: p.stem)
def test_example_archs_load(path):
    arch = load_arch(path)
    raw = yaml.safe_load(path.read_text())
    assert arch.name == raw["name"]
    assert (arch.array.rows, arch.array.cols, arch.array.dataflow) == (
        raw["array"]["rows"], raw["array"]["cols"], raw["array"]["dataflow"])


def test_bad_arch_lists_every_problem(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({
        "version": 1, "name": "bad",
        "array": {"rows": -4, "cols": 16, "dataflow": "wss"},
        "pe": {"weight_format": "int9x", "activation_format": "int8"},
        "buffers": {"ifmap": {"size_kib": -1}, "weight": {"size_kib": 64}, "ofmap": {"size_kib": 64},
                    "banks": 2},
        "clock_mhz": 500, "frequency": 3,
    }))
    with pytest.raises(ConfigError) as err:
        load_arch(path)
    problems = err.value.problems
    paths = sorted(p.split(":")[0] for p in problems)
    assert paths == ["arch.array.dataflow", "arch.array.rows", "arch.buffers.banks", "arch.buffers.ifmap.size_kib",
                     "arch.frequency", "arch.pe.weight_format"]
    assert any("'wss'" in p for p in problems) and any("-4" in p for p in problems)
    assert any("'int9x'" in p for p in problems)
    assert str(path) in str(err.value)
    rc = main(["run", "--arch", str(path)])
    out = capsys.readouterr()
    assert rc == 2
    assert "Traceback" not in out.err and "arch.array.rows" in out.err and str(path) in out.err


def test_arch_dram_gbps_converted_and_unified_split():
    arch = arch_from_dict({"array": {"rows": 8, "cols": 8}, "clock_mhz": 500,
                           "dram": {"bandwidth_gb_per_s": 16},
                           "buffers": {"unified": {"size_kib": 300, "bandwidth_words_per_cycle": 30}}})
    assert arch.dram.bandwidth_bytes_per_cycle == pytest.approx(32.0)
    assert arch.buffers.unified and arch.buffers.ifmap.size_kib == pytest.approx(100)
    assert arch.buffers.weight.bandwidth_words_per_cycle == pytest.approx(10)


def test_arch_missing_array_and_both_bandwidths():
    with pytest.raises(ConfigError) as err:
        arch_from_dict({"dram": {"bandwidth_gb_per_s": 1, "bandwidth_bytes_per_cycle": 2}})
    text = str(err.value)
    assert "arch.array: required section is missing" in text and "arch.dram.bandwidth_gb_per_s" in text


def test_default_arch_and_workload():
    arch = default_arch()
    wl = default_workload()
    assert arch.array.rows == 32 and arch.pe.weight_format == "int8"
    assert wl.name == "minilm-l6-seq128"
    names = [op.name for op in wl.ops]
    ffn1 = wl.ops[names.index("encoder.layer.0.intermediate.dense")]
    assert (ffn1.m, ffn1.k, ffn1.n, ffn1.count) == (128, 384, 1536, 1)
    scores = wl.ops[names.index("encoder.layer.5.attention.self.scores")]
    assert (scores.m, scores.k, scores.n, scores.count, scores.b_is_activation) == (128, 32, 128, 12, True)
    assert sum(op.macs for op in wl.ops) == 6 * (128 * 384 * (4 * 384 + 2 * 1536) + 2 * 12 * 128 * 128 * 32)


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "workloads").iterdir()), ids=lambda p: p.name)
def test_example_workloads_load(path):
    wl = load_workload(path)
    assert len(wl) > 0 and all(op.name for op in wl.ops)


def test_conv_lowering_matches_pytorch_rule():
    op = conv_to_gemm(name="c", in_h=224, in_w=224, in_channels=3, out_channels=64, kernel=7, stride=2, padding=3)
    assert (op.m, op.k, op.n, op.count) == (112 * 112, 7 * 7 * 3, 64, 1)
    dw = conv_to_gemm(name="dw", in_h=10, in_w=12, in_channels=8, out_channels=8, kernel=(3, 1), groups=8,
                      dilation=2, batch=2)
    assert (dw.m, dw.k, dw.n, dw.count) == (2 * 6 * 12, 3, 1, 8)


def test_bad_workload_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        workload_from_dict({"ops": [{"type": "gemm", "m": 0, "k": 4, "n": 4},
                                    {"type": "convv"},
                                    {"type": "layernorm", "rows": 4, "cols": 8, "eps": 1e-5}]})
    paths = [p.split(":")[0] for p in err.value.problems]
    assert paths == ["workload.ops[0].m", "workload.ops[1].type", "workload.ops[2].eps"]


def test_workload_from_graph():
    from hwsim.graph import Graph

    g = Graph("toy")
    g.add_tensor("x", (4, 8))
    g.add_tensor("w", (8, 16), is_weight=True)
    g.add_tensor("y", (4, 16))
    g.add_tensor("z", (4, 16))
    g.add_op("fc", "linear", ["x", "w"], ["y"])
    g.add_op("act", "gelu", ["y"], ["z"])
    wl = workload_from_graph(g)
    assert wl.ops[0] == GemmOp(name="fc", m=4, k=8, n=16)
    assert wl.ops[1].kind == "gelu" and wl.ops[1].elements == 64
