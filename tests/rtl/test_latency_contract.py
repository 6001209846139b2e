# amaranth: UnusedElaboratable=no
"""One latency contract: the RTL blocks publish the numbers of hwsim.latency and the cycle model charges them."""

from __future__ import annotations

import pytest

pytest.importorskip("amaranth")

from hwsim.latency import PE_LATENCY, REQUANT_LATENCY, ws_tile_cycles, ws_tile_latency
from hwsim.perf.arch import RequantConfig, arch_from_dict
from hwsim.perf.timing import compute_cycles, map_gemm
from hwsim.requant import RequantSpec
from hwsim.rtl.configs import MULTI_PE_CONFIGS, PE_CONFIGS, REQUANT_CONFIGS, TILE_CONFIGS, build


def test_requant_latency_defaults_agree():
    """Dataclass default, YAML default and the RTL unit are one number (was 4 vs 3)."""
    yaml_default = arch_from_dict({"name": "x", "array": {"rows": 4, "cols": 4}}).requant.latency
    assert RequantConfig().latency == yaml_default == REQUANT_LATENCY == RequantSpec().latency
    for name in REQUANT_CONFIGS:
        assert build(name).latency == REQUANT_LATENCY


def test_pe_latency_published():
    for name in [*PE_CONFIGS, *MULTI_PE_CONFIGS]:
        assert build(name).latency == PE_LATENCY


@pytest.mark.parametrize("name", list(TILE_CONFIGS))
def test_tile_contract(name):
    """The tile publishes rows + cols - 1; the model's tile mode charges ws_tile_cycles per GEMM."""
    cfg = TILE_CONFIGS[name]
    tile = build(name)
    assert tile.latency == ws_tile_latency(cfg.rows, cfg.cols) == cfg.rows + cfg.cols - 1
    for m, k, n in ((1, cfg.rows, cfg.cols), (13, 3 * cfg.rows, 2 * cfg.cols), (40, cfg.rows + 1, 1)):
        fm = map_gemm(m, k, n, cfg.rows, cfg.cols, "ws")
        assert compute_cycles(fm, "tile") == ws_tile_cycles(cfg.rows, cfg.cols, m, fm.folds)
        # SCALE-Sim counts the index of the last MAC cycle; the tile registers it once more
        assert compute_cycles(fm, "tile") == compute_cycles(fm, "scalesim") + 1


def test_tile_mode_needs_ws():
    from hwsim.errors import ConfigError

    with pytest.raises(ConfigError, match="arch.timing.mode"):
        arch_from_dict({"name": "x", "array": {"rows": 4, "cols": 4, "dataflow": "os"}, "timing": {"mode": "tile"}})
    with pytest.raises(ValueError, match="dataflow must be 'ws'"):
        compute_cycles(map_gemm(4, 4, 4, 4, 4, "os"), "tile")
