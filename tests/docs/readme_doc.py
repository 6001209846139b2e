"""README console blocks as tests: run each documented ``$ hwsim ...`` command and compare its output.

A console block in README.md is a fenced block whose first line is ``$ hwsim ARGS``; the lines after it
are the command's documented stdout. :data:`BLOCKS` says how each documented command is checked:

- ``exact``: every line must match once machine-dependent parts are masked (:data:`MASKS`: regexes
  whose matches are replaced by ``<…>`` in both texts, e.g. wall times);
- ``skip`` with the reason (too slow for the suite, or its output is being reworked).

A command found in the README but not in :data:`BLOCKS` fails the test, so a new example is never
silently unchecked. Commands run in a fresh folder holding a link to the repository's ``examples/`` and
``tests/`` folders, so the README's relative paths work and outputs land in that folder.

Regenerate the checked blocks after an intended change (then review the diff)::

    python tests/docs/readme_doc.py --update

To check the ``hwsim run`` blocks as well: move their entry from ``skip`` to ``exact`` and add masks
for what the machine decides (``Wall time``, the accuracy table's ``seconds`` column).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: Documented command (exactly as after ``$ ``) -> "exact" or ("skip", reason).
BLOCKS = {
    "hwsim datapath": "exact",
    "hwsim scalesim examples/arch/scalesim_sa32x32_ws.cfg examples/workloads/scalesim_minilm_gemm.csv --out ss":
        "exact",
    "hwsim run --arch examples/arch/edge_int8_16x16_ws.yaml --workload examples/workloads/bert_base_layer_seq128.yaml"
    " --out out_wl": "exact",
    "hwsim run --arch bad.yaml --workload w.yaml": ("skip", "needs the bad.yaml shown above it (error format "
                                                            "is tested in tests/perf)"),
    "hwsim run": "exact",
    "hwsim run --model smollm2 --formats q4_1-a8,w8a8,mixed-int4-ffn --out smol":
        ("skip", "80 s of SmolLM2 numerics; figures checked by tests/models"),
    "hwsim run --workload llm:llama-2-7b --phase prefill --seq-len 2048 --arch "
    "examples/arch/llm_int8_128x128_ws_1mib.yaml": "exact",
    "hwsim run --workload llm:llama-2-7b --phase decode --kv-len 2048 --arch "
    "examples/arch/llm_int8_128x128_ws_1mib.yaml": "exact",
    "hwsim sweep examples/sweeps/joint_minilm.yaml --out out/joint": ("skip", "four MiniLM accuracies, ~30 s; the "
                                                                     "joint sweep is tests/sweep/test_sweep_joint.py"),
    "hwsim rtl area": ("skip", "44 s of Yosys synthesis; area numbers are tested in tests/rtl"),
}
#: Regexes for machine-dependent text, masked in documented and actual output alike.
MASKS = (r"Wall time [0-9.]+ s", r"in [0-9.]+ s")


@dataclass(frozen=True)
class ConsoleBlock:
    """One ``$ hwsim ...`` block: its command, documented output lines and README line span."""

    command: str
    expected: tuple[str, ...]
    start: int  # index of the ``$`` line in README lines
    end: int  # index of the closing fence


def console_blocks(text: str) -> list[ConsoleBlock]:
    """Every fenced block of ``text`` whose first line is ``$ hwsim ...``."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```") and i + 1 < len(lines) and lines[i + 1].startswith("$ hwsim"):
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            blocks.append(ConsoleBlock(lines[i + 1][2:].strip(), tuple(lines[i + 2:end]), i + 1, end))
            i = end
        i += 1
    return blocks


def mask(text: str) -> str:
    for pattern in MASKS:
        text = re.sub(pattern, "<…>", text)
    return text


def run_documented(command: str, workdir: Path) -> list[str]:
    """Run ``command`` (``hwsim ...``) in ``workdir`` with this interpreter; return its stdout lines."""
    for name in ("examples", "tests"):
        link = workdir / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    argv = [sys.executable, "-m", "hwsim", *shlex.split(command)[1:]]
    env = {**os.environ, "HWSIM_PROGRESS": "0", "COLUMNS": "200"}
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, env=env, check=False, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"`{command}` exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout.rstrip("\n").splitlines()


def differences(expected, actual) -> list[str]:
    """Masked lines that differ, as ``README: ...`` / ``actual: ...`` pairs (empty when they match)."""
    exp = [mask(line).rstrip() for line in expected]
    act = [mask(line).rstrip() for line in actual]
    out = []
    for i in range(max(len(exp), len(act))):
        a = exp[i] if i < len(exp) else "<missing>"
        b = act[i] if i < len(act) else "<missing>"
        if a != b:
            out += [f"line {i + 1}:", f"  README: {a}", f"  actual: {b}"]
    return out


def update(readme: Path = README) -> int:
    """Rewrite every ``exact`` block of ``readme`` with fresh output; return how many changed."""
    lines = readme.read_text().splitlines()
    changed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for block in reversed(console_blocks("\n".join(lines))):
            if BLOCKS.get(block.command) != "exact":
                continue
            fresh = run_documented(block.command, Path(tmp))
            if differences(block.expected, fresh):
                lines[block.start + 1:block.end] = fresh
                changed += 1
    readme.write_text("\n".join(lines) + "\n")
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/docs/readme_doc.py --update")
    print(f"{update()} README block(s) regenerated")
