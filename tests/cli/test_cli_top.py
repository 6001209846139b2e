"""The assembled command line: help, python -m, the datapath demo, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from hwsim.cli import build_parser, main
from hwsim.datapath_demo import demo_operands, run_datapath_demo


def test_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("formats", "datapath", "report", "sweep"):
        assert command in out


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "hwsim", "formats", "--kind", "float"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "float8_e4m3fn" in done.stdout and "448" in done.stdout


def test_bad_argument_exits_2_without_traceback():
    done = subprocess.run([sys.executable, "-m", "hwsim", "datapath", "--m", "zero"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_datapath_demo_rows_follow_format_precision():
    table = run_datapath_demo(m=16, k=256, n=64, seed=3).set_index("datapath")
    err = table["rel_rms_error"]
    # more mantissa bits, less error: E4M3 beats E5M2 beats E2M1; 8-bit weights beat 4-bit weights
    assert err["FP8 E4M3 x E4M3"] < err["FP8 E5M2 x E5M2"] < err["FP4 E2M1 x E2M1"]
    assert err["W8A8 int (requant to int8)"] < err["W4A8 int"]
    assert (table["cosine"] > 0).all() and (table["cosine"] <= 1 + 1e-12).all()


def test_demo_operands_are_seeded():
    a1, w1 = demo_operands(8, 64, 16, seed=5)
    a2, w2 = demo_operands(8, 64, 16, seed=5)
    assert np.array_equal(a1, a2) and np.array_equal(w1, w2)


def test_parser_builds_without_optional_providers():
    parser = build_parser()
    assert parser.prog == "hwsim"


def test_public_api_is_the_functions_whatever_was_imported_first():
    code = ("import hwsim.gemm, hwsim.requant, hwsim.formats\n"
            "from hwsim import gemm, get_format, quantize_multiplier, requantize\n"
            "import types\n"
            "assert all(isinstance(f, types.FunctionType) for f in (gemm, get_format, quantize_multiplier, "
            "requantize)), (gemm, get_format)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
