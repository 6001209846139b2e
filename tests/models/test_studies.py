"""Study runner: one table per study, accuracy and cost per row from the same quantized graph."""

import pytest

from hwsim.models import studies


def test_study_runs_rows_and_writes_csv_and_markdown(tmp_path):
    study = studies.Study("t-minilm", "minilm", (("RTN", {"recipe": [{"rtn": {}}]}),
                                                 ("rotation", {"recipe": [{"rotation": {}}, {"rtn": {}}]})),
                          {"sentences": 2, "calib_sentences": 2, "layers": 1}, "test")
    studies.STUDIES[study.name] = study
    try:
        rows = studies.run_study("t-minilm", tmp_path, log=lambda m: None)
    finally:
        del studies.STUDIES[study.name]
    assert [r["row"] for r in rows] == ["RTN", "rotation"]
    assert all(r["cycles"] > 0 and r["energy_uj"] > 0 and 0.5 < r["cosine_vs_float"] <= 1 for r in rows)
    assert rows[1]["cycles"] > rows[0]["cycles"]  # the online Hadamards are charged
    assert (tmp_path / "t-minilm.csv").read_text().startswith("row,")
    assert "| RTN |" in (tmp_path / "t-minilm.md").read_text()
    md = studies.markdown(study, [{"row": "a", "cycles": None, "cost_note": "n/a"}, {"row": "b", "cycles": 5}], 1.0)
    assert "| b | 5 |  |" in md  # a row without a column's key leaves the cell empty


def test_issue9_studies_are_registered_and_bad_names_fail():
    import hwsim.models.study_defs  # noqa: F401

    assert {"c-smollm2-w8a8-static", "d-smollm2-kbit-grid", "e-minilm-fp-fpq"} <= set(studies.STUDIES)
    with pytest.raises(ValueError, match="study must be one of"):
        studies.run_study("nope")
    assert studies.cli(["nope"]) == 2
    with pytest.raises(ValueError, match="rows must be among"):
        studies.run_study("c-smollm2-w8a8-static", only={"RTN, typo"})


def test_studies_price_unfused_unless_asked():
    """README tables are op-by-op (unfused) costs; --fusion prices like hwsim run."""
    assert studies.study_arch().fusion is False and studies.study_arch(fusion=True).fusion is True
    study = studies.Study("t-fuse", "minilm", (("RTN", {"recipe": [{"rtn": {}}]}),),
                          {"sentences": 1, "calib_sentences": 1, "layers": 1}, "test")
    studies.STUDIES[study.name] = study
    try:
        plain = studies.run_study("t-fuse", log=lambda m: None)[0]
        fused = studies.run_study("t-fuse", log=lambda m: None, fusion=True)[0]
    finally:
        del studies.STUDIES[study.name]
    assert plain["cosine_vs_float"] == fused["cosine_vs_float"] and fused["cycles"] < plain["cycles"]
