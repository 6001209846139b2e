"""Fixtures of the robustness suite."""

from __future__ import annotations

import pytest
from robust_helpers import run_hwsim


@pytest.fixture
def hwsim():
    return run_hwsim
