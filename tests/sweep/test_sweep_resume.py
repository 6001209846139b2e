"""kill -9 in the middle of a sweep, resume: no point lost, none duplicated, table identical to one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from hwsim.sweep import load_sweep
from hwsim.sweep_run import run_sweep
from hwsim.sweep_store import ChunkStore

SPEC = {"name": "killme", "workload": "wl.yaml", "chunk_size": 4,
        "grid": {"array.rows": list(range(8, 72, 8)), "array.cols": [8, 16, 32, 64],
                 "array.dataflow": ["ws", "os", "is"], "clock_mhz": [400, 800]}}
WORKLOAD = {"name": "gemms", "ops": [{"name": "a", "type": "gemm", "m": 64, "k": 256, "n": 256},
                                     {"name": "b", "type": "gemm", "m": 64, "k": 256, "n": 1024}]}


@pytest.mark.slow
def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    (tmp_path / "wl.yaml").write_text(yaml.safe_dump(WORKLOAD))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    spec = load_sweep(path)
    total_chunks = -(-spec.size // spec.chunk_size)
    out = tmp_path / "killed"
    chunks = out / "store" / "chunks"
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "hwsim", "-q", "sweep", str(path), "--out", str(out),
                                 "--workers", "1"], stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "HWSIM_PROGRESS": "0"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if chunks.is_dir() and len(list(chunks.glob("chunk-*.parquet"))) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
    finished = ChunkStore(out / "store").done()
    assert 3 <= len(finished) < total_chunks  # killed mid-run
    assert not (out / "results").exists()

    resumed = subprocess.run([sys.executable, "-m", "hwsim", "-q", "sweep", "--resume", str(out), "--workers", "1"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({spec.size - 4 * len(finished)} evaluated now, {len(finished)} chunks resumed)" in resumed.stdout
    assert not list(chunks.glob("*.tmp-*"))

    table = pd.read_parquet(out / "results" / "results.parquet")
    assert len(table) == spec.size  # 0 lost
    assert table["point"].is_unique and table["point_hash"].is_unique  # 0 duplicated
    reference = run_sweep(spec, tmp_path / "whole", workers=1).frame
    cols = [c for c in reference.columns]
    pd.testing.assert_frame_equal(table[cols].reset_index(drop=True), reference[cols].reset_index(drop=True))


def test_leftover_temporary_chunk_is_removed_on_open(tmp_path):
    store = ChunkStore(tmp_path / "store")
    store.open("abc", {})
    (store.chunks / "chunk-000003.parquet.tmp-123").write_bytes(b"partial")
    assert store.open("abc", {}) == 0
    assert not list(store.chunks.iterdir())
