"""Cutting a long document to what a model may read: the first pages, and the pages that carry totals."""

from __future__ import annotations

import re
from collections.abc import Sequence

from contracts.documents import PageText

TOTALS = re.compile(
    r"\b(total|amount due|balance due|grand total|gesamt\w*|summe|endbetrag|zu zahlen|"
    r"итого|всего|к оплате)\b",
    re.I,
)
FIRST_PAGES_SHARE = 0.6  # of the budget, for the opening pages; the rest for pages with totals


def page_block(page: PageText) -> str:
    return f"--- page {page.number} ---\n{page.text.strip()}\n"


def cut_to_budget(pages: Sequence[PageText], budget_chars: int) -> str:
    """The document as text of at most ~`budget_chars` characters.

    Everything when it fits. Otherwise the opening pages up to 60 % of the budget (sender, dates,
    numbers live there), then pages that mention a total, last page first (the grand total ends a
    document), then whatever still fits in page order; omitted ranges are marked so a model knows.
    """
    blocks = {p.number: page_block(p) for p in pages}
    if sum(len(b) for b in blocks.values()) <= budget_chars:
        return "".join(blocks[p.number] for p in pages)
    chosen: set[int] = set()
    # Room for the "[… pages a–b omitted …]" markers, so the result stays within the budget.
    used = min(budget_chars // 10, 40 * (len(blocks) // 2 + 1))

    def take(number: int, limit: int) -> bool:
        nonlocal used
        size = len(blocks[number])
        if number in chosen or used + size > limit:
            return False
        chosen.add(number)
        used += size
        return True

    ordered = [p.number for p in pages]
    for n in ordered:
        if not take(n, int(budget_chars * FIRST_PAGES_SHARE)):
            break
    for p in reversed(pages):
        if TOTALS.search(p.text):
            take(p.number, budget_chars)
    for n in ordered:
        take(n, budget_chars)
    if not chosen and ordered:  # a single page larger than the budget: its beginning
        return blocks[ordered[0]][:budget_chars]
    out: list[str] = []
    skipped: list[int] = []
    for n in ordered:
        if n in chosen:
            if skipped:
                out.append(_omitted(skipped))
                skipped = []
            out.append(blocks[n])
        else:
            skipped.append(n)
    if skipped:
        out.append(_omitted(skipped))
    return "".join(out)


def _omitted(numbers: list[int]) -> str:
    span = f"{numbers[0]}" if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}"
    return f"[… page {span} omitted …]\n" if len(numbers) == 1 else f"[… pages {span} omitted …]\n"
