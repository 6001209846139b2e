"""Deterministic text slices from the standard library's ``pydoc_data.topics`` (always installed).

Used for calibration and held-out evaluation of the imported models, so no data set is downloaded.
Calibration and evaluation draw from disjoint halves of the topic list (sorted by name):
even-indexed topics calibrate, odd-indexed topics evaluate.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _topics() -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    return sorted(topics.items())


def sentences(split: str, count: int, *, min_words: int = 6, max_words: int = 24) -> list[str]:
    """Return ``count`` English sentences from the ``"calib"`` or ``"eval"`` split.

    Sentences are taken in order from prose lines (code samples and headings are skipped), with
    whitespace collapsed, keeping those with ``min_words..max_words`` words.
    """
    if split not in ("calib", "eval"):
        raise ValueError(f"split must be 'calib' or 'eval', not {split!r}")
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, not {count!r}")
    parity = 0 if split == "calib" else 1
    out: list[str] = []
    for index, (_name, text) in enumerate(_topics()):
        if index % 2 != parity:
            continue
        paragraphs = re.split(r"\n\s*\n", text)
        for para in paragraphs:
            lines = para.splitlines()
            if not lines or lines[0].startswith((" ", "\t")) or "*" * 3 in para or "=" * 3 in para:
                continue
            flat = " ".join(line.strip() for line in lines)
            for sent in _SENTENCE.split(flat):
                words = sent.split()
                if min_words <= len(words) <= max_words and sent[0].isupper():
                    out.append(" ".join(words))
                    if len(out) == count:
                        return out
    if len(out) < count:
        raise ValueError(f"pydoc_data.topics {split!r} split has only {len(out)} sentences, not {count!r}")
    return out


def text(split: str, chars: int) -> str:
    """Return about ``chars`` characters of running prose from the split (for perplexity)."""
    if not isinstance(chars, int) or chars < 1:
        raise ValueError(f"chars must be a positive int, not {chars!r}")
    body = ""
    for sent in sentences(split, 400, max_words=60):
        body = f"{body} {sent}" if body else sent
        if len(body) >= chars:
            break
    return body[:chars].rsplit(" ", 1)[0] if len(body) > chars else body
