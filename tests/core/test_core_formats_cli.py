"""``hwsim formats``: every registered format in the table; argument errors exit 2 without a traceback."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys

import pytest

from hwsim import get_format
from hwsim.cli import main
from hwsim.formats import list_formats


def test_formats_csv_lists_every_format(capsys):
    assert main(["formats", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name"] for r in rows] == list_formats()
    for row in rows:
        spec = get_format(row["name"])
        assert int(row["bits"]) == spec.bits and row["kind"] == spec.kind
        if spec.kind != "mx":
            assert float(row["max"]) == spec.max and float(row["min"]) == spec.min
            assert float(row["min_subnormal"]) == spec.min_subnormal
            assert row["nan"] == str(spec.has_nan) and row["inf"] == str(spec.has_inf)
    e4 = next(r for r in rows if r["name"] == "float8_e4m3fn")
    assert float(e4["max"]) == 448 and float(e4["min_subnormal"]) == 2.0**-9 and e4["nan"] == "True"
    e5 = next(r for r in rows if r["name"] == "float8_e5m2")
    assert float(e5["max"]) == 57344 and e5["inf"] == "True"
    mx = next(r for r in rows if r["name"] == "mxfp4")
    assert math.isclose(float(mx["max"]), 6 * 2.0**127)


@pytest.mark.parametrize("kind", ["int", "float", "dint", "codebook", "mx"])
def test_formats_kind_filter(capsys, kind):
    assert main(["formats", "--kind", kind]) == 0
    out = capsys.readouterr().out
    expected = [n for n in list_formats() if get_format(n).kind == kind]
    assert expected
    lines = out.strip().splitlines()
    assert len(lines) == len(expected) + 1  # header + one row per format
    assert [line.split()[0] for line in lines[1:]] == expected


def test_formats_table_mentions_every_name(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    names = {line.split()[0] for line in out.strip().splitlines()[1:]}
    assert names == set(list_formats())


@pytest.mark.parametrize("argv", [["formats", "--kind", "bogus"], ["formats", "--bogus"], ["formatz"]])
def test_bad_arguments_exit_2_one_error_line(argv):
    done = subprocess.run([sys.executable, "-m", "hwsim", *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("hwsim")
