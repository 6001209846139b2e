"""SmoothQuant α search: per-norm α chosen with activation quantization in the loop."""

import numpy as np
import pytest
from test_recipes import _batches, _mlp

from hwsim.errors import ConfigError
from hwsim.float_executor import FloatBackend, run_graph
from hwsim.int_executor import IntegerExecutor
from hwsim.ptq import apply_recipe, load_recipe
from hwsim.ptq.smoothquant import search_alpha


def test_search_picks_the_grid_minimum_and_flattens_a_planted_outlier():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 32))
    x[:, 7] *= 60.0
    w = rng.normal(size=(32, 16)) * 0.1
    amax = np.abs(x).max(axis=0)
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    best = search_alpha(x, amax, [w], grid, "int8")
    assert best > 0.0  # an outlier channel: migrating it into the weights pays
    # α = 0 (no smoothing) is among the candidates, so the search never does worse than it
    assert search_alpha(x, amax, [w], (0.0,), "int8") == 0.0


def test_searched_recipe_records_alpha_and_beats_no_smoothing():
    g = _mlp(outlier=5)
    f = _batches(1, seed=7)[0]
    ref = run_graph(g, f, FloatBackend())["out"]
    rtn = {"rtn": {"weights": "int8", "activations": "int8"}}
    searched = apply_recipe(g, {"recipe": [{"smoothquant": {"alpha": "search"}}, rtn]}, _batches())
    assert 0.0 < searched.meta["smoothquant"]["ln0"] <= 1.0
    plain = apply_recipe(g, {"recipe": [rtn]}, _batches())
    err = [np.linalg.norm(IntegerExecutor(q).run(f)["out"] - ref) for q in (plain, searched)]
    assert err[1] < err[0]
    listed = apply_recipe(g, {"recipe": [{"smoothquant": {"alpha": [0.3], "search_weights": "int8"}}]}, _batches())
    assert listed.meta["smoothquant"]["ln0"] == pytest.approx(0.3)


def test_bad_search_parameters():
    with pytest.raises(ConfigError) as err:
        load_recipe({"recipe": [{"smoothquant": {"alpha": "best", "search_activations": "int9x",
                                                 "search_weights": "mxfp4"}}]})
    for needle in ("smoothquant.alpha", "smoothquant.search_activations", "smoothquant.search_weights"):
        assert needle in str(err.value)
