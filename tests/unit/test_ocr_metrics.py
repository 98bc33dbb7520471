"""The OCR quality measures the tests and the benchmark use: word recall and character error rate."""

from __future__ import annotations

import random

from services.extraction.ocr.metrics import char_error_rate, levenshtein, missed_words, word_recall


def naive_levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_levenshtein_matches_the_textbook_recurrence() -> None:
    rnd = random.Random(3)
    for _ in range(200):
        a = "".join(rnd.choice("abcä ") for _ in range(rnd.randrange(0, 30)))
        b = "".join(rnd.choice("abcä ") for _ in range(rnd.randrange(0, 30)))
        assert levenshtein(a, b) == naive_levenshtein(a, b), (a, b)
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3


def test_word_recall_counts_repeats_in_any_order() -> None:
    assert word_recall("a b b c", "c b a") == 0.75
    assert missed_words("a b b c", "c b a") == ["b"]
    assert word_recall("", "anything") == 1.0


def test_cer_treats_whitespace_runs_as_one_space() -> None:
    assert char_error_rate("Total due:\n 12.00", "Total  due: 12.00") == 0.0
    assert char_error_rate("abcd", "abed") == 0.25
