"""Corrupt or missing model files give one clear error naming the file (never a traceback)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.models.gguf_import import GGUFModel
from hwsim.models.onnx_import import load_onnx


@pytest.fixture
def garbage(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def test_corrupt_onnx(garbage):
    with pytest.raises(ValueError, match=r"garbage\.bin: not a valid ONNX model"):
        load_onnx(garbage)


def test_missing_onnx(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        load_onnx(tmp_path / "missing.onnx")


def test_corrupt_gguf(garbage):
    with pytest.raises(ValueError, match=r"garbage\.bin: not a valid GGUF file"):
        GGUFModel(garbage)


def test_cli_corrupt_onnx_is_one_line(garbage, capsys):
    assert main(["model", "check-onnx", "--model", str(garbage)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "garbage.bin" in err[0] and "not a valid ONNX model" in err[0]
