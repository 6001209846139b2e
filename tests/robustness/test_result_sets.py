"""Result folders are consistent as a set: a failed or interrupted command leaves the previous set whole."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from robust_helpers import assert_one_line_error

from hwsim.cli import main
from hwsim.result_set import MANIFEST, result_set

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "examples" / "workloads" / "minilm_l6_seq128.yaml"
ARCH_A = ROOT / "examples" / "arch" / "edge_int8_16x16_ws.yaml"
ARCH_B = ROOT / "examples" / "arch" / "tpu_like_128x128_ws.yaml"
EXTRA = ROOT / "tests" / "perf" / "data" / "scalesim_extra"


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _no_partials(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def _first_run(out: Path) -> dict:
    assert main(["run", "--workload", str(WORKLOAD), "--arch", str(ARCH_A), "--out", str(out)]) == 0
    assert (out / MANIFEST).is_file() and (out / "report.html").is_file()
    return _snapshot(out)


def test_interrupt_during_report_keeps_previous_set(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    before = _first_run(out)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hwsim.reports.run_report.build_report", interrupted)
    assert main(["run", "--workload", str(WORKLOAD), "--arch", str(ARCH_B), "--out", str(out)]) == 130
    assert _snapshot(out) == before  # not the new summary.json next to the old report.html
    assert _no_partials(tmp_path)
    assert capsys.readouterr().err.strip().endswith("hwsim: interrupted")


def _sigint_default():
    """In the child: Ctrl-C as in an interactive shell. A test run started as a background job inherits an
    ignored SIGINT, which hwsim (rightly) keeps ignored; these tests are about the interactive case."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_real_sigint_during_report_in_a_subprocess(tmp_path):
    out = tmp_path / "run"
    before = _first_run(out)
    code = (
        "import os, signal, sys, time\n"
        "import hwsim.reports.run_report as rr\n"
        "def report(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "rr.build_report = report\n"
        "from hwsim.cli import main\n"
        f"sys.exit(main(['run', '--workload', {str(WORKLOAD)!r}, '--arch', {str(ARCH_B)!r}, '--out', {str(out)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=_sigint_default)
    assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
    assert _snapshot(out) == before
    assert _no_partials(tmp_path)


def test_successful_rerun_replaces_the_whole_set(tmp_path, capsys):
    out = tmp_path / "run"
    _first_run(out)
    (out / "stale.png").write_bytes(b"old figure")  # a file the new run does not write
    assert main(["run", "--workload", str(WORKLOAD), "--arch", str(ARCH_B), "--out", str(out), "--no-report"]) == 0
    assert not (out / "stale.png").exists() and not (out / "report.html").exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(p.name for p in out.iterdir() if p.name != MANIFEST)
    assert _no_partials(tmp_path)


def test_scalesim_full_disk_leaves_previous_reports(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ss"
    args = ["scalesim", str(EXTRA / "tiny4x8_is.cfg"), str(EXTRA / "conv_odd.csv"), "--out", str(out)]
    assert main(args) == 0
    before = _snapshot(out)
    import hwsim.perf.scalesim_io as sio

    real = sio._write_csvs

    def full_disk(folder, reports):
        real(folder, reports)
        (folder / "BANDWIDTH_REPORT.csv").write_text("")  # what a full disk left behind before
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "BANDWIDTH_REPORT.csv"))

    monkeypatch.setattr(sio, "_write_csvs", full_disk)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _snapshot(out) == before and _no_partials(tmp_path)


def test_failing_sweep_leaves_no_partial_set(tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep"
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nworkload: {WORKLOAD}\ngrid:\n  array.rows: [8, 16]\n")
    import hwsim.reports.sweep_report as sr

    def broken(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "results" / "report.html"))

    monkeypatch.setattr(sr, "scatter_png", broken)
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1"]) == 2
    # the finished points stay in the resumable store; no (partial) result set is left
    assert not (out / "results").exists() and _no_partials(out)
    assert list((out / "store" / "chunks").glob("chunk-*.parquet"))


def test_killed_writer_leaves_a_partial_folder_that_readers_refuse_and_writers_clean(tmp_path, hwsim):
    out = tmp_path / "run"
    code = ("import os, signal\n"
            "from hwsim.result_set import result_set\n"
            f"with result_set({str(out)!r}) as folder:\n"
            "    (folder / 'summary.json').write_text('{}')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    partials = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert len(partials) == 1 and not out.exists()
    assert_one_line_error(hwsim(["report", partials[0]]), "incomplete result set")
    with result_set(out) as folder:
        (folder / "summary.json").write_text("{}")
    assert _no_partials(tmp_path) and (out / "summary.json").is_file()


@pytest.mark.parametrize("case", ["file", "under-file", "foreign"])
def test_bad_out_folders_are_one_line(tmp_path, hwsim, case):
    target = tmp_path / "target"
    if case == "file":
        target.write_text("keep me")
        out = target
    elif case == "under-file":
        target.write_text("keep me")
        out = target / "sub"
    else:
        target.mkdir()
        (target / "notes.txt").write_text("keep me")
        out = target
    done = hwsim(["scalesim", EXTRA / "tiny4x8_is.cfg", EXTRA / "conv_odd.csv", "--out", out])
    assert_one_line_error(done, str(target))
    kept = target / "notes.txt" if case == "foreign" else target
    assert kept.read_text() == "keep me"


def test_report_in_place_adds_report_to_the_run_set(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--workload", str(WORKLOAD), "--out", str(out), "--no-report"]) == 0
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").is_file() and (out / "summary.json").is_file()
    assert "report.html" in json.loads((out / MANIFEST).read_text())["files"]
    assert str(out / "report.html") in capsys.readouterr().out


def test_ctrl_c_while_the_console_script_imports_is_one_line(tmp_path):
    # A stand-in for the console script (its file name is what hwsim/__init__ looks at): Ctrl-C arrives
    # after the package started loading but before hwsim.cli.main runs.
    script = tmp_path / "hwsim"
    script.write_text("import os, signal, time\n"
                      "import hwsim\n"
                      "os.kill(os.getpid(), signal.SIGINT)\n"
                      "time.sleep(5)\n"
                      "import hwsim.cli\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=_sigint_default)
    assert done.returncode == 130 and done.stderr == "hwsim: interrupted\n", (done.returncode, done.stderr)
