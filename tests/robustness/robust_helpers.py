"""Helpers of the robustness suite: run the CLI in a subprocess, optionally under an address-space limit."""

from __future__ import annotations

import os
import subprocess
import sys

#: Address-space limit of the memory-bomb subprocesses (bytes): an unbounded allocation fails fast.
ADDRESS_SPACE_LIMIT = 3 << 30


def _limit_preexec(limit):
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_hwsim(args, *, limit=None, cwd=None, env=None, timeout=60):
    """Run ``python -m hwsim ARGS``; return the CompletedProcess (text)."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HWSIM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "hwsim", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout, check=False,
                          preexec_fn=_limit_preexec(limit) if limit else None)


def assert_one_line_error(done, *needles, code=2):
    """Exit ``code``, no traceback, exactly one ``hwsim...: error`` line on stderr containing ``needles``."""
    err = done.stderr
    assert done.returncode == code, (done.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    first = err.splitlines()[0] if err else ""
    assert first.startswith("hwsim"), err[-2000:]
    for needle in needles:
        assert needle in err, (needle, err[-2000:])
    return err
