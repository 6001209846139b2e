"""The joint sweep: MiniLM (1 layer, few sentences) x 4 recipes x 3 arrays x 2 dataflows x 2 SRAM sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import hwsim.models.run as model_run
from hwsim.reports.sweep_report import pareto_flags
from hwsim.sweep import sweep_from_dict
from hwsim.sweep_run import run_sweep

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweeps" / "joint_minilm.yaml"


@pytest.mark.slow
def test_joint_sweep_accuracy_latency_energy_area(tmp_path, monkeypatch):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["models"] = {"minilm": {"sentences": 3, "calib_sentences": 2, "layers": 1}}
    spec = sweep_from_dict(data, source=str(EXAMPLE), base_dir=EXAMPLE.parent)
    assert spec.size == 48 and list(spec.objectives) == ["accuracy", "latency_us", "energy_uj", "area_mm2"]
    frame = run_sweep(spec, tmp_path / "a", workers=1).frame
    assert len(frame) == 48 and (frame["error"] == "").all()
    for col in ("accuracy", "latency_us", "energy_uj", "area_mm2"):
        assert np.isfinite(frame[col]).all() and (frame[col] > 0).all()
    by_recipe = frame.groupby("recipe")
    assert by_recipe["accuracy"].nunique().eq(1).all()  # accuracy joined per (model, recipe)
    assert frame.groupby("recipe")["accuracy"].first().nunique() == 4
    # the recipe fixes the PE pairs: fp8 needs the e4m3 PE, larger than int8's
    pe = by_recipe["pe_nand2"].first()
    assert pe["fp8"] == 2529.0 and pe["w8a8"] < pe["fp8"]
    front = pareto_flags(frame, spec.objectives)
    assert 1 < front.sum() < len(frame)

    # accuracy comes from the on-disk cache the second time: quantizing again would fail
    def refuse(*_a, **_k):
        raise AssertionError("accuracy recomputed despite the cache")

    monkeypatch.setattr(model_run, "quantize_and_score", refuse)
    again = run_sweep(spec, tmp_path / "b", workers=1, cache_dir=tmp_path / "a" / "store" / "accuracy").frame
    assert np.array_equal(again["accuracy"], frame["accuracy"])
