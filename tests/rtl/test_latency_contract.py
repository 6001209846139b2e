# amaranth: UnusedElaboratable=no
"""One latency contract: the RTL blocks publish the numbers of hwsim.latency and the cycle model charges them."""

from __future__ import annotations

import pytest

pytest.importorskip("amaranth")

from hwsim.latency import (
    INT_NORM_PIPELINE,
    PE_LATENCY,
    REQUANT_LATENCY,
    int_norm_cycles,
    ws_tile_cycles,
    ws_tile_latency,
)
from hwsim.perf.arch import RequantConfig, arch_from_dict
from hwsim.perf.timing import compute_cycles, map_gemm
from hwsim.requant import RequantSpec
from hwsim.rtl.configs import MULTI_PE_CONFIGS, NORM_CONFIGS, PE_CONFIGS, REQUANT_CONFIGS, TILE_CONFIGS, build


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


@pytest.mark.parametrize("name", list(NORM_CONFIGS))
def test_norm_contract(name):
    """The norm unit's published row latency is what the cycle model charges for one row on the default
    architecture (whose layernorm pipeline latency is the unit's)."""
    from hwsim.perf.arch import LayerNormConfig, default_arch
    from hwsim.perf.timing import int_norm_cycles as model_norm_cycles

    cfg, unit = NORM_CONFIGS[name], build(name)
    arch = default_arch()
    assert arch.layernorm.latency == LayerNormConfig().latency == INT_NORM_PIPELINE
    assert unit.latency == model_norm_cycles(1, cfg.n, cfg.kind, arch.layernorm)
    timing = {"lanes": unit.lanes, "div_latency": unit.div_latency, "newton_iterations": unit.newton_iterations}
    assert unit.latency == int_norm_cycles(cfg.n, cfg.kind, **timing)
    yaml_default = arch_from_dict({"name": "x", "array": {"rows": 4, "cols": 4}}).layernorm.latency
    assert yaml_default == INT_NORM_PIPELINE
    sequential = arch_from_dict({"name": "x", "array": {"rows": 4, "cols": 4},
                                 "layernorm": {"overlap_rows": False}}).layernorm
    for rows in (1, 2, 7):
        assert model_norm_cycles(rows, cfg.n, cfg.kind, sequential) == int_norm_cycles(cfg.n, cfg.kind, rows=rows,
                                                                                        **timing)
