"""Studies (a) and (b) of issue 9: every row is a valid recipe, labels unique, methods extensible."""

from hwsim.models import study_weights
from hwsim.models.studies import STUDIES
from hwsim.ptq import load_recipe


def test_rows_are_valid_recipes_with_unique_labels():
    for name in ("a-minilm-ptq", "b-smollm2-weight-only"):
        rows = STUDIES[name].rows
        labels = [label for label, _ in rows]
        assert len(set(labels)) == len(labels)
        for label, recipe in rows:
            load_recipe({"name": label, **recipe})
    assert len(STUDIES["a-minilm-ptq"].rows) == 3 * len(study_weights.MINILM_METHODS)
    assert len(STUDIES["b-smollm2-weight-only"].rows) == 9


def test_adding_a_method_adds_a_row_per_precision():
    methods = {**study_weights.MINILM_METHODS,
               "GPTQ g64": lambda w, a: [{"gptq": {"weights": w, "granularity": "group", "group_size": 64}},
                                         {"rtn": {"weights": "keep", "activations": a}}]}
    rows = study_weights.minilm_rows(methods)
    assert [label for label, _ in rows if label.endswith("GPTQ g64")] == ["W8A8 GPTQ g64", "W4A8 GPTQ g64",
                                                                         "W4A4 GPTQ g64"]
