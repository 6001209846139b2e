"""Repository hygiene: lint clean, no generated files tracked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: it is part of the test extra")
    done = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_generated_files_tracked():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = [f for f in files if any(part in f.split("/") for part in ("sim_build", "__pycache__", ".venv", "obj_dir"))
           or f.endswith((".pyc", ".vcd", ".fst", ".so", ".o"))]
    assert not bad, bad


# A path that only exists on one machine: a user's home, root's home, or this build host's /work tree.
_MACHINE_PATH = re.compile(r"(?<![\w.~-])(/work/|/home/[a-z_][\w-]*/|/root/|/Users/[\w-]+/|[A-Z]:\\Users\\)")


_THIS = "tests/hygiene/test_hygiene.py"  # holds the pattern and its examples


def test_no_machine_absolute_paths_in_tracked_files():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    bad = []
    for name in files:
        path = ROOT / name
        if name == _THIS or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary file
        bad += [f"{name}:{n}: {line.strip()[:100]}" for n, line in enumerate(text.splitlines(), 1)
                if _MACHINE_PATH.search(line)]
    assert not bad, "absolute paths of one machine:\n" + "\n".join(bad)


def test_machine_path_pattern_catches_what_it_should():
    assert _MACHINE_PATH.search('REF = Path("/work/shared/reference")')
    assert _MACHINE_PATH.search("see /home/alice/x.csv") and _MACHINE_PATH.search("open('/root/a')")
    assert not _MACHINE_PATH.search("ROOT.parent / 'shared'") and not _MACHINE_PATH.search("../shared/reference")
