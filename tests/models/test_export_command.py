"""``hwsim model export``: checkpoint folders and ONNX written as a whole, bad input refused in one line."""

from __future__ import annotations

import json

from hwsim.cli import main
from hwsim.result_set import MANIFEST


def test_export_gptq_checkpoint_folder(tmp_path, capsys):
    out = tmp_path / "ckpt"
    assert main(["model", "export", "--recipe", "gptq-w4a8", "--layout", "gptq", "--layers", "1",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "re-imported checkpoint executes bit-identically to the stored model: yes" in text
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "quantize_config.json",
                                               "export.json", MANIFEST}
    summary = json.loads((out / "export.json").read_text())
    assert summary["linears"] == 6 and summary["reimport_identical"] and summary["scales_rounded"] == 0
    assert summary["score_graph"] == summary["score_stored"]  # float16 scales already: nothing changes
    assert json.loads((out / "config.json").read_text())["quantization_config"]["quant_method"] == "gptq"


def test_export_onnx_json(tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["model", "export", "--recipe", "w4a8-g32", "--layout", "onnx", "--layers", "1", "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["check"]["accumulators_equal"] and (out / "linears.onnx").is_file()


def test_unrepresentable_layer_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["model", "export", "--recipe", "nvfp4-a8", "--layout", "awq", "--layers", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwsim: error: layer 'encoder.layer.0.attention.self.query': weight format") and \
        "a awq checkpoint cannot hold it" in err and "\n" not in err
    assert not out.exists() and not list(tmp_path.iterdir())
