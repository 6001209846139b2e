"""dINT readings: special codes and α are format parameters; today's no-zero reading and the zero-kept one."""

import numpy as np
import pytest

from hwsim.formats import DintFormat, get_format
from hwsim.qspec import weight_spec, weight_values


def test_readings_value_tables():
    a, z = get_format("dint4"), get_format("dint4z")
    assert sorted(a.values()) == [-7, -6, -5, -4, -3, -2, -1, -0.5, 0.5, 1, 2, 3, 4, 5, 6, 7]
    assert sorted(z.values()) == [-8, -6, -5, -4, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 4, 5, 6]
    assert (a.max, z.max) == (7.0, 6.0)
    x = np.array([0.0, -0.0, 0.2, 0.3, 0.75, 6.4])
    assert list(a.decode(a.encode(x))) == [0.5, -0.5, 0.5, 0.5, 0.5, 6.0]
    assert list(z.decode(z.encode(x))) == [0.0, 0.0, 0.0, 0.5, 0.5, 6.0]
    custom = DintFormat(name="d", bits=4, alpha=0.25, special=(7, -8))
    assert 0.25 in custom.values() and -0.25 in custom.values() and 0.0 in custom.values()
    with pytest.raises(ValueError, match="special must be two distinct integers"):
        DintFormat(name="bad", bits=4, special=(3, 3))


def test_zero_kept_reading_keeps_zero_weights():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(256, 64)) * 0.02 * (rng.random((256, 64)) < 0.3)  # 70 % exact zeros (pruned)
    err = {f: float(((weight_values(weight_spec(w, f, "channel")) - w) ** 2).mean()) for f in
           ("int4", "dint4", "dint4z")}
    assert err["dint4z"] < err["dint4"]
    assert np.all(weight_values(weight_spec(w, "dint4z", "channel"))[w == 0] == 0)
