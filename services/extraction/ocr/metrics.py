"""How well a page was read, against its true text (tests and `bench/bench_ocr.py`)."""

from __future__ import annotations

from collections import Counter

import numpy as np


def word_recall(truth: str, read: str) -> float:
    """The share of the true words (split on whitespace, counted with repeats, in any order) that the
    reading contains."""
    want = Counter(truth.split())
    got = Counter(read.split())
    total = sum(want.values())
    return sum((want & got).values()) / total if total else 1.0


def missed_words(truth: str, read: str) -> list[str]:
    return list((Counter(truth.split()) - Counter(read.split())).elements())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), one numpy row per character of `a`."""
    if not a or not b:
        return len(a) or len(b)
    codes = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, ch in enumerate(a, 1):
        cost = codes != ord(ch)
        nxt = np.empty_like(row)
        nxt[0] = i
        nxt[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)
        row = np.minimum.accumulate(nxt - steps) + steps  # insertions, left to right
    return int(row[-1])


def char_error_rate(truth: str, read: str) -> float:
    """Edit distance over the true text's length, with runs of whitespace counted as one space (line
    breaks and column gaps are layout, not characters)."""
    t, r = " ".join(truth.split()), " ".join(read.split())
    return levenshtein(t, r) / max(len(t), 1)
