"""Progress display (silent unless stderr is a terminal, quiet wins) and BLAS thread control."""

from __future__ import annotations

import io

import pytest

from hwsim import progress, threads


class _Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def tty_stderr(monkeypatch):
    """A terminal-like stderr; call it inside the test body (pytest's capture resets sys.stderr per phase)."""
    monkeypatch.delenv("HWSIM_PROGRESS", raising=False)
    monkeypatch.delenv("HWSIM_QUIET", raising=False)

    def install():
        stream = _Tty()
        monkeypatch.setattr("sys.stderr", stream)
        return stream

    yield install
    progress.set_quiet(False)


def test_track_passes_items_through_and_draws_on_a_terminal(tty_stderr):
    stream = tty_stderr()
    assert list(progress.track(iter(range(5)), "formats", total=5, unit="format")) == [0, 1, 2, 3, 4]
    assert "formats" in stream.getvalue()


def test_track_is_silent_when_quiet_or_not_a_terminal(tty_stderr, monkeypatch, capsys):
    stream = tty_stderr()
    progress.set_quiet(True)
    assert list(progress.track([1, 2], "formats")) == [1, 2]
    with progress.stage("report") as note:
        note("figures")
    assert stream.getvalue() == ""
    progress.set_quiet(False)
    monkeypatch.setenv("HWSIM_QUIET", "1")
    assert not progress.enabled()
    monkeypatch.delenv("HWSIM_QUIET")
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a file or pipe, not a terminal
    assert not progress.enabled()
    monkeypatch.setenv("HWSIM_PROGRESS", "1")
    assert progress.enabled()
    assert capsys.readouterr().out == ""


def test_stage_reports_done_with_time(tty_stderr):
    stream = tty_stderr()
    with progress.stage("rtl area") as note:
        note("pe int8")
    text = stream.getvalue()
    assert "rtl area: done in" in text and " s" in text


def test_stage_does_not_swallow_errors(tty_stderr):
    tty_stderr()
    with pytest.raises(KeyError), progress.stage("failing"):
        raise KeyError("x")


def test_requested_threads_reads_hwsim_threads():
    assert threads.requested_threads({}) == threads.DEFAULT_THREADS
    assert threads.requested_threads({"HWSIM_THREADS": "3"}) == 3
    assert threads.requested_threads({"HWSIM_THREADS": "all"}) is None
    with pytest.raises(ValueError, match="HWSIM_THREADS: expected a positive integer"):
        threads.requested_threads({"HWSIM_THREADS": "many"})


def test_limit_blas_threads_caps_the_loaded_pools(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy as np

    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS loaded
    before = threadpoolctl.threadpool_info()
    try:
        assert threads.limit_blas_threads(1) == 1
        for pool in threadpoolctl.threadpool_info():
            assert pool["num_threads"] == 1
    finally:
        threadpoolctl.threadpool_limits(limits={p["prefix"]: p["num_threads"] for p in before})
    with pytest.raises(ValueError, match="threads must be a positive int"):
        threads.limit_blas_threads(0)
