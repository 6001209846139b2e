"""Every former traceback case is now one line with the right exit code; CLI conventions (-q/-v, --version)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import assert_one_line_error

from hwsim.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXTRA = ROOT / "tests" / "perf" / "data" / "scalesim_extra"


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip().startswith("hwsim 0.")


def test_full_disk_on_stdout_is_one_line():
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "hwsim", "formats"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == "hwsim: error: writing output: No space left on device"


def test_conv_kernel_list_of_one_through_the_cli(tmp_path, capsys):
    wl = tmp_path / "w.yaml"
    wl.write_text("ops:\n  - {type: conv, in_h: 8, in_w: 8, in_channels: 2, out_channels: 4, kernel: [3]}\n")
    assert main(["run", "--workload", str(wl)]) == 0


def test_percent_in_scalesim_cfg_is_text(tmp_path, capsys):
    cfg = tmp_path / "p.cfg"
    cfg.write_text((EXTRA / "tiny4x8_is.cfg").read_text().replace("run_name = tiny4x8_is", "run_name = a%(x)s"))
    assert main(["scalesim", str(cfg), str(EXTRA / "conv_odd.csv"), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("a%(x)s:")


def test_non_utf8_topology_names_the_file(tmp_path, hwsim):
    topo = tmp_path / "t.csv"
    topo.write_bytes(b"Layer, M, N, K,\nl\xff, 4, 4, 4,\n")
    done = hwsim(["scalesim", EXTRA / "tiny4x8_is.cfg", topo, "--out", tmp_path / "o"])
    assert_one_line_error(done, str(topo), "not UTF-8", "byte 17")


def test_huge_count_is_a_config_error_not_an_overflow(tmp_path, capsys):
    wl = tmp_path / "w.yaml"
    wl.write_text("ops:\n  - {type: gemm, m: 1048576, k: 1048576, n: 1048576, count: 1073741824}\n")
    assert main(["run", "--workload", str(wl), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "workload.ops[0]" in err and "exceed 2^60" in err and "Traceback" not in err


def test_bad_option_values(capsys):
    for argv, needle in ((["datapath", "--m", "0"], "--m"), (["run", "--sentences", "0"], "--sentences"),
                         (["run", "--formats", ""], "--formats")):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err
    assert main(["datapath", "--k", "2"]) == 2
    assert "datapath --k: expected at least 4" in capsys.readouterr().err


def test_internal_error_is_one_line_saying_bug_and_debug_shows_traceback(monkeypatch, capsys):
    import hwsim.formats_cli as formats_cli

    def broken(_args):
        return np.max(np.array([]))  # numpy's own ValueError: a bug of ours, not bad input

    monkeypatch.setattr(formats_cli, "_run", broken)
    assert main(["formats"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hwsim: internal error (a bug in hwsim") and "--debug" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert main(["--debug", "formats"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_missing_extra_names_the_pip_install(tmp_path):
    code = ("import sys\n"
            "for name in ('safetensors', 'tokenizers', 'onnx', 'onnxruntime', 'gguf'):\n"
            "    sys.modules[name] = None\n"
            "from hwsim.cli import main\n"
            f"sys.exit(main(['run', '--out', {str(tmp_path / 'o')!r}, '--sentences', '1', '--layers', '1']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "pip install 'hwsim[models]'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "o").exists()


def test_quiet_and_verbose_use_the_hwsim_logger_only(tmp_path, capsys):
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    cfg = tmp_path / "user.cfg"
    cfg.write_text((EXTRA / "tiny4x8_is.cfg").read_text().replace("CALC", "USER"))
    args = ["scalesim", str(cfg), str(EXTRA / "conv_odd.csv"), "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert "InterfaceBandwidth USER" in capsys.readouterr().err
    assert main(["-q", *args]) == 0
    assert "InterfaceBandwidth USER" not in capsys.readouterr().err
    assert main([*args, "-q"]) == 0  # also after the sub-command
    assert "InterfaceBandwidth USER" not in capsys.readouterr().err
    assert main(["-v", *args]) == 0
    assert logging.getLogger("hwsim").level == logging.DEBUG
    assert (list(root.handlers), root.level) == before
