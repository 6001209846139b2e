"""The scalesim-compatible mode against SCALE-Sim 3.0's own outputs (shared reference + extra oracle runs)."""

from pathlib import Path

import pandas as pd
import pytest

from hwsim.errors import ConfigError
from hwsim.perf.scalesim_io import (
    COMPUTE_HEADER,
    DETAIL_HEADER,
    layer_report,
    read_config,
    read_topology,
    write_reports,
)

DATA = Path(__file__).parent / "data"
_SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "scalesim"  # next to the repository
# the shared reference when present, else the copy kept with the tests (for CI)
REF = _SHARED if (_SHARED / "results.csv").is_file() else DATA / "scalesim_reference"
EXTRA = DATA / "scalesim_extra"
needs_ref = pytest.mark.skipif(not (REF / "results.csv").is_file(), reason="shared SCALE-Sim reference absent")

COUNT_COLUMNS = ["total_cycles", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes"]
DRAM_COLUMNS = ["dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"]


def _reference_rows():
    if not (REF / "results.csv").is_file():
        return []
    ref = pd.read_csv(REF / "results.csv")
    return [row for _, row in ref.iterrows()]


def _layers():
    layers = {}
    for name in ("minilm_gemm_topology.csv", "resnet18_conv_topology.csv"):
        for layer in read_topology(REF / name).layers:
            layers[layer.name] = layer
    return layers


def _id(row):
    return f"{row['layer']}-{row['array']}-{row['dataflow']}"


@needs_ref
@pytest.mark.parametrize("row", _reference_rows(), ids=_id)
def test_reference_cycles_and_sram_exact(row):
    cfg = read_config(REF / f"sa{row['array']}_{row['dataflow']}.cfg")
    layer = _layers()[row["layer"]]
    assert layer.mnk == (row["M"], row["K"], row["N"])
    got = layer_report(layer, cfg, exact_dram=False)
    assert [got[c] for c in COUNT_COLUMNS] == [row[c] for c in COUNT_COLUMNS]
    assert got["stall_cycles"] == row["stall_cycles"]
    assert got["overall_util"] == pytest.approx(row["overall_util_pct"], abs=6e-4)
    assert got["mapping_eff"] == pytest.approx(row["mapping_eff_pct"], abs=6e-4)
    assert got["compute_util"] == pytest.approx(row["compute_util_pct"], abs=6e-4)


def _small_rows():
    return [r for r in _reference_rows() if r["MACs"] <= 20_000_000 or
            (r["layer"] == "r18_l2_conv1_s2" and r["array"] == "32x32")]


@needs_ref
@pytest.mark.parametrize("row", _small_rows(), ids=_id)
def test_reference_dram_exact(row):
    cfg = read_config(REF / f"sa{row['array']}_{row['dataflow']}.cfg")
    got = layer_report(_layers()[row["layer"]], cfg, exact_dram=True)
    assert [got[c] for c in DRAM_COLUMNS] == [row[c] for c in DRAM_COLUMNS]


@pytest.mark.parametrize("run", sorted(p.name for p in EXTRA.iterdir() if p.is_dir()))
def test_extra_oracle_runs_every_cell(run, tmp_path):
    kind, cfg_name = run.split("_", 1)
    cfg = read_config(EXTRA / f"{cfg_name}.cfg")
    topo = read_topology(EXTRA / f"{kind}_odd.csv")
    write_reports(tmp_path, cfg, topo)
    for report in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv"):
        # byte for byte: same numbers, same float formatting, same header
        assert (tmp_path / report).read_text() == (EXTRA / run / report).read_text()


def test_report_headers_are_scalesims(tmp_path):
    cfg = read_config(EXTRA / "sa8x4_ws.cfg")
    write_reports(tmp_path, cfg, read_topology(EXTRA / "gemm_odd.csv"), exact_dram=False)
    assert (tmp_path / "COMPUTE_REPORT.csv").read_text().splitlines()[0] + "\n" == COMPUTE_HEADER
    lines = (tmp_path / "DETAILED_ACCESS_REPORT.csv").read_text().splitlines()
    assert lines[0] + "\n" == DETAIL_HEADER
    assert len(lines) == 7 and all(line.endswith(",") for line in lines)


def test_gemm_topology_column_order_is_m_n_k(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Layer, M, N, K,\nx, 5, 7, 11,\n\n")
    topo = read_topology(path)
    assert topo.mode == "gemm"
    assert topo.layers[0].mnk == (5, 11, 7)  # (M, K, N)


def test_conv_topology_ceil_output_size(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                    "Num Filter, Strides,\nc, 16, 16, 3, 3, 4, 9, 2,\n")
    layer = read_topology(path).layers[0]
    assert (layer.ofmap_h, layer.ofmap_w) == (8, 8)  # ceil((16 - 3 + 2) / 2)
    assert layer.mnk == (64, 36, 9)


def test_topology_errors_list_every_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Layer, M, N, K,\na, 1, 2,\nb, 1, x, 3,\nc, 1, 2, 3, 2:4,\n")
    with pytest.raises(ConfigError) as err:
        read_topology(path)
    text = str(err.value)
    assert str(path) in text and "line 2" in text and "line 3" in text and "line 4" in text


def test_config_errors(tmp_path):
    text = (EXTRA / "sa8x4_ws.cfg").read_text()
    bad = text.replace("Dataflow : ws", "Dataflow : wss").replace("ArrayHeight:    8", "ArrayHeight:    -8")
    bad = bad.replace("SparsitySupport : false", "SparsitySupport : true")
    path = tmp_path / "bad.cfg"
    path.write_text(bad)
    with pytest.raises(ConfigError) as err:
        read_config(path)
    msg = str(err.value)
    assert "architecture_presets.Dataflow" in msg and "'wss'" in msg
    assert "architecture_presets.ArrayHeight" in msg and "sparsity.SparsitySupport" in msg


def test_cli_scalesim(tmp_path, capsys):
    from hwsim.cli import main

    rc = main(["scalesim", str(EXTRA / "tiny4x8_is.cfg"), str(EXTRA / "conv_odd.csv"), "--out", str(tmp_path)])
    assert rc == 0
    assert "c4" in capsys.readouterr().out
    ours = (tmp_path / "DETAILED_ACCESS_REPORT.csv").read_text()
    assert ours == (EXTRA / "conv_tiny4x8_is" / "DETAILED_ACCESS_REPORT.csv").read_text()


def test_depthwise_dp_layers_split_per_channel(tmp_path):
    path = tmp_path / "dw.csv"
    path.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                    "Num Filter, Strides,\nconv_DP, 10, 10, 3, 3, 3, 1, 1,\n")
    layers = read_topology(path).layers
    assert [la.name for la in layers] == ["conv_DPChannel_0", "conv_DPChannel_1", "conv_DPChannel_2"]
    assert all(la.mnk == (64, 9, 1) for la in layers)
