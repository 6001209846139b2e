"""README outputs stay true: every documented ``$ hwsim ...`` block is run and compared (see readme_doc)."""

from __future__ import annotations

import pytest
from readme_doc import BLOCKS, README, console_blocks, differences, mask, run_documented

_BLOCKS = console_blocks(README.read_text())


def test_every_documented_command_has_a_check_policy():
    unknown = [b.command for b in _BLOCKS if b.command not in BLOCKS]
    assert not unknown, f"README commands without an entry in readme_doc.BLOCKS: {unknown}"
    assert sum(BLOCKS[b.command] == "exact" for b in _BLOCKS) >= 3


@pytest.mark.parametrize("block", [b for b in _BLOCKS if BLOCKS.get(b.command) == "exact"], ids=lambda b: b.command)
def test_documented_output_is_what_the_command_prints(block, tmp_path):
    diff = differences(block.expected, run_documented(block.command, tmp_path))
    assert not diff, f"README.md line {block.start + 1}: `{block.command}` prints something else " \
                     "(regenerate with `python tests/docs/readme_doc.py --update` if intended):\n" + "\n".join(diff)


def test_the_comparison_catches_a_changed_figure():
    expected = ("  cycles             7,770,064  (compute 4,204,244)", "Wall time 1.66 s.")
    assert not differences(expected, ["  cycles             7,770,064  (compute 4,204,244)", "Wall time 9.99 s."])
    assert differences(expected, ["  cycles             7,770,065  (compute 4,204,244)", "Wall time 1.66 s."])
    assert differences(expected, expected[:1])  # a missing line
    assert mask("done in 12.5 s") == "done <…>"
