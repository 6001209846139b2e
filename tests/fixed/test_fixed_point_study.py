"""The fixed-point study's recipes and table writer."""

import math

from hwsim.models.fixed_point_study import fixed_recipe, markdown_table, study_recipes, write_table
from hwsim.ptq import load_recipe


def test_study_grid_covers_mitigation_rope_softmax():
    rows = study_recipes("smollm2")
    fixed = [(lab["mitigation"], lab["rope_bits"], lab["softmax_bits"]) for lab, r in rows if isinstance(r, dict)]
    for mit in ("smoothquant", "elae", "mcom"):
        for r in (8, 16):
            for s in (8, 16):
                assert (mit, r, s) in fixed
    assert rows[0][1] == "w8a8"
    for _, recipe in rows:
        load_recipe(recipe)  # every recipe validates


def test_fixed_recipe_sets_the_widths():
    steps = load_recipe(fixed_recipe("mcom", 8, 16, "table")).steps
    assert [s.name for s in steps] == ["gom", "rtn", "fixed_point"]
    assert steps[-1].params["rope_bits"] == 8 and steps[-1].params["exp"] == "table"


def test_table_written(tmp_path):
    rows = [{"mitigation": "float", "perplexity": 36.2, "error": ""},
            {"mitigation": "mcom", "perplexity": math.nan, "error": "op 'x' | y"}]
    write_table(rows, tmp_path, "smollm2", {"chunks": 2})
    md = (tmp_path / "fixed_point_study_smollm2.md").read_text()
    assert "| mcom | nan | op 'x' / y |" in md and "chunks 2" in md
    assert (tmp_path / "fixed_point_study_smollm2.csv").read_text().startswith("mitigation,perplexity,error")
    assert markdown_table(rows).count("\n") == 3


def test_ablation_rows_drop_one_part_each():
    rows = {lab["mitigation"]: load_recipe(r) for lab, r in study_recipes("minilm") if isinstance(r, dict)}
    full = rows["mcom"].steps
    assert full[0].params["ori_ln"] and full[-1].params["residual"] == "rl-sat"
    omit_ori = rows["ablation: omit ORI-LN (mcom)"].steps
    assert not omit_ori[0].params["ori_ln"] and omit_ori[-1].params["residual"] == "rl-sat"
    assert rows["ablation: omit RL-SAT (mcom)"].steps[-1].params["residual"] == "two-step"
    assert [s.name for s in rows["ablation: omit GOM (none)"].steps] == ["rtn", "fixed_point"]
    assert rows["ablation: omit GOM + ORI-LN + RL-SAT"].steps[-1].params["residual"] == "two-step"
