"""The offline default: rules instead of a model, so a fresh install fills in fields without any setup.

Labels and keywords cover English, German and Russian. Each rule looks for a labelled value first
("Invoice number: …", "Rechnungsdatum …", "Итого …") and falls back to weaker evidence (the first
date in the text, the letterhead for the sender). Nothing is guessed when nothing matches.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .base import DEFAULT_BUDGET_CHARS, Usage

MODEL = "builtin-rules-1"

# ---- dates ---------------------------------------------------------------------------------------
MONTHS = {
    # English
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    # German
    "januar": 1,
    "jänner": 1,
    "februar": 2,
    "märz": 3,
    "maerz": 3,
    "mai": 5,
    "juni": 6,
    "juli": 7,
    "oktober": 10,
    "dezember": 12,
    "okt": 10,
    "dez": 12,
    # Russian (nominative and genitive)
    "январь": 1,
    "января": 1,
    "февраль": 2,
    "февраля": 2,
    "март": 3,
    "марта": 3,
    "апрель": 4,
    "апреля": 4,
    "май": 5,
    "мая": 5,
    "июнь": 6,
    "июня": 6,
    "июль": 7,
    "июля": 7,
    "август": 8,
    "августа": 8,
    "сентябрь": 9,
    "сентября": 9,
    "октябрь": 10,
    "октября": 10,
    "ноябрь": 11,
    "ноября": 11,
    "декабрь": 12,
    "декабря": 12,
}
_MONTH_NAMES = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))
DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), ("y", "m", "d")),
    (re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b"), ("d", "m", "y")),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), ("d", "m", "y")),
    (re.compile(rf"\b(\d{{1,2}})\.?\s+({_MONTH_NAMES})\.?,?\s+(\d{{4}})", re.I), ("d", "M", "y")),
    (
        re.compile(rf"\b({_MONTH_NAMES})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})", re.I),
        ("M", "d", "y"),
    ),
]
DOC_DATE_LABELS = re.compile(
    r"(invoice date|date of issue|issue date|document date|^\s*date|rechnungsdatum|belegdatum|^\s*datum|"
    r"дата счета|дата счёта|дата документа|^\s*дата)",
    re.I,
)
DUE_DATE_LABELS = re.compile(
    r"(due date|payment due|pay by|due on|fällig|zahlbar bis|zahlungsziel|"
    r"срок оплаты|оплатить до)",
    re.I,
)


def find_dates(text: str) -> list[tuple[int, date]]:
    """Every valid date in `text` with its position."""
    found: list[tuple[int, date]] = []
    for pattern, order in DATE_PATTERNS:
        for m in pattern.finditer(text):
            parts = dict(zip(order, m.groups(), strict=True))
            try:
                month = MONTHS[parts["M"].lower()] if "M" in parts else int(parts["m"])
                found.append((m.start(), date(int(parts["y"]), month, int(parts["d"]))))
            except (KeyError, ValueError):
                continue
    return sorted(found)


def _labelled_date(lines: list[str], label: re.Pattern[str]) -> date | None:
    for i, line in enumerate(lines):
        if label.search(line):
            for candidate in (line, lines[i + 1] if i + 1 < len(lines) else ""):
                dates = find_dates(candidate)
                if dates:
                    return dates[0][1]
    return None


# ---- amounts and currencies ------------------------------------------------------------------------
# 1,234.56 · 1.234,56 · 1 234,56 · 1234.56 · 1234 — not followed by % (a tax rate is not an amount).
AMOUNT = re.compile(
    r"(?<![\w.,])(-?\d{1,3}(?:[ ,.\u00a0\u202f]\d{3})+(?:[.,]\d{1,2})?|-?\d+(?:[.,]\d{1,2})?)(?![\d%])"
)
CURRENCY_CODES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "RUB",
    "JPY",
    "CAD",
    "AUD",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "UAH",
    "KZT",
    "CNY",
    "INR",
)
CURRENCY_SYMBOLS = {
    "€": "EUR",
    "$": "USD",
    "£": "GBP",
    "₽": "RUB",
    "¥": "JPY",
    "руб": "RUB",
    "р.": "RUB",
    "fr.": "CHF",
}
_CODE_RE = re.compile(r"\b(" + "|".join(CURRENCY_CODES) + r")\b")
TOTAL_LABELS = re.compile(
    r"(total|amount due|balance due|grand total|gesamt|summe|endbetrag|rechnungsbetrag|"
    r"zu zahlen|zahlbetrag|итого|всего к оплате|к оплате|сумма к оплате)",
    re.I,
)
NET_LABELS = re.compile(
    r"(subtotal|sub-total|net amount|net total|\bnet\b|netto|zwischensumme|"
    r"без ндс|сумма без)",
    re.I,
)
TAX_LABELS = re.compile(r"(\bvat\b|\btax\b|sales tax|mwst|ust\b|umsatzsteuer|mehrwertsteuer|ндс|налог)", re.I)


def parse_amount(raw: str) -> Decimal | None:
    s = re.sub(r"[ \u00a0\u202f]", "", raw)
    decimal_part = re.search(r"[.,](\d{1,2})$", s)  # one or two digits after the last separator: cents
    whole, frac = (s[: decimal_part.start()], decimal_part.group(1)) if decimal_part else (s, "")
    whole = re.sub(r"[,.]", "", whole)
    try:
        return Decimal(f"{whole}.{frac}" if frac else whole)
    except InvalidOperation:
        return None


def _amount_in(line: str) -> Decimal | None:
    """The last amount on a labelled line (labels come first, the value last)."""
    # Drop dates and percentages so "VAT 19%" or a date is not read as the amount.
    cleaned = line
    for pattern, _ in DATE_PATTERNS:
        cleaned = pattern.sub(" ", cleaned)
    cleaned = re.sub(r"\d+(?:[.,]\d+)?\s*%", " ", cleaned)
    values = [parse_amount(m.group(1)) for m in AMOUNT.finditer(cleaned)]
    values = [v for v in values if v is not None]
    return values[-1] if values else None


def find_amounts(lines: list[str]) -> dict[str, Decimal]:
    """total / net / tax from labelled lines; for each, the last labelled line wins (totals end a document)."""
    found: dict[str, Decimal] = {}
    for line in lines:
        if NET_LABELS.search(line):
            kind = "net"
        elif TAX_LABELS.search(line) and not TOTAL_LABELS.search(line):
            kind = "tax"
        elif TOTAL_LABELS.search(line):
            kind = "total"
        else:
            continue
        value = _amount_in(line)
        if value is not None:
            found[kind] = value
    return found


def find_currency(text: str) -> str | None:
    labelled = re.search(r"(currency|währung|валюта)\s*[:#]?\s*([A-Z]{3})\b", text, re.I)
    if labelled and labelled.group(2).upper() in CURRENCY_CODES:
        return labelled.group(2).upper()
    votes: Counter[str] = Counter(m.group(1) for m in _CODE_RE.finditer(text))
    for symbol, code in CURRENCY_SYMBOLS.items():
        n = (
            text.count(symbol)
            if len(symbol) == 1
            else len(re.findall(rf"\d\s*{re.escape(symbol)}", text, re.I))
        )
        if n:
            votes[code] += n
    return votes.most_common(1)[0][0] if votes else None


# ---- numbers and IBAN -----------------------------------------------------------------------------
# A number carries a digit; labels and values share a line ("Nordlicht" after "INVOICE" is no number).
_ID = r"(?=[^\s]*\d)([A-Z0-9ÄÖÜА-Я][A-Z0-9ÄÖÜА-Я\-/._]{2,40})"
_SEP = r"\b[ \t]*[:#.№]?[ \t]*"
INVOICE_NO = re.compile(
    r"(invoice[ \t]*(?:number|no\.?|nr\.?|#|id)|rechnungs?[ \t]*-?[ \t]*(?:nummer|nr\.?)|"
    r"сч[её]т на оплату[ \t]*№|сч[её]т[ \t]*№|номер сч[её]та|сч[её]т-фактура[ \t]*№)" + _SEP + _ID,
    re.I,
)
CUSTOMER_NO = re.compile(
    r"(customer[ \t]*(?:number|no\.?|id|#)|account[ \t]*(?:number|no\.?)|"
    r"client[ \t]*(?:number|no\.?)|kunden[ \t]*-?[ \t]*(?:nummer|nr\.?)|номер клиента|"
    r"лицевой сч[её]т|код клиента)" + _SEP + _ID,
    re.I,
)
IBAN_RE = re.compile(r"\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})\b")


def _first_group(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    return m.group(2).rstrip(".,;:") if m else None


def iban_valid(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    digits = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(digits) % 97 == 1


def find_iban(text: str) -> str | None:
    for m in IBAN_RE.finditer(text):
        candidate = m.group(1).replace(" ", "")
        # A match may run into the next word; shorten until the checksum holds.
        for end in range(len(candidate), 14, -1):
            if iban_valid(candidate[:end]):
                return candidate[:end]
    return None


# ---- document type, language -------------------------------------------------------------------------
TYPE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "invoice": (
        "invoice",
        "rechnung",
        "счет-фактура",
        "счёт-фактура",
        "счет на оплату",
        "счёт на оплату",
        "invoice number",
        "rechnungsnummer",
    ),
    "receipt": (
        "receipt",
        "quittung",
        "kassenbon",
        "kassenbeleg",
        "кассовый чек",
        "квитанция",
        "товарный чек",
    ),
    "contract": ("contract", "agreement", "vertrag", "vereinbarung", "договор", "соглашение"),
    "letter": (
        "dear ",
        "yours faithfully",
        "yours sincerely",
        "kind regards",
        "sehr geehrte",
        "mit freundlichen grüßen",
        "уважаемый",
        "уважаемая",
        "с уважением",
    ),
    "bank_statement": (
        "account statement",
        "bank statement",
        "kontoauszug",
        "выписка по счету",
        "выписка по счёту",
        "opening balance",
        "closing balance",
        "anfangssaldo",
    ),
    "payslip": (
        "payslip",
        "pay slip",
        "salary statement",
        "gehaltsabrechnung",
        "lohnabrechnung",
        "entgeltabrechnung",
        "расчетный листок",
        "расчётный листок",
    ),
    "tax_document": (
        "tax return",
        "tax assessment",
        "steuerbescheid",
        "steuererklärung",
        "einkommensteuer",
        "налоговая декларация",
        "налоговое уведомление",
        "form 1040",
        "w-2",
    ),
}
STOPWORDS = {
    "en": {
        "the",
        "and",
        "of",
        "to",
        "for",
        "is",
        "with",
        "your",
        "date",
        "please",
        "we",
        "this",
        "dear",
        "our",
        "yours",
        "subject",
        "reference",
        "invoice",
        "total",
    },
    "de": {"der", "die", "das", "und", "mit", "für", "ist", "sie", "ihre", "wir", "bitte", "nicht", "von"},
    "fr": {"le", "la", "les", "et", "de", "des", "pour", "vous", "nous", "est", "avec"},
    "ru": {"и", "в", "не", "на", "с", "по", "для", "от", "что", "это", "к", "оплате"},
}


def guess_type(lines: list[str]) -> str | None:
    lower = [ln.lower() for ln in lines]
    scores: Counter[str] = Counter()
    for i, line in enumerate(lower):
        hits = [(kind, w) for kind, words in TYPE_KEYWORDS.items() for w in words if w in line]
        for kind, w in hits:
            if any(w != other and w in other for _, other in hits):
                continue  # "rechnung" inside "gehaltsabrechnung": the longer word decides
            # A heading near the top says more than a word in the body; a salutation or
            # closing marks a letter even when its subject names a contract or an invoice.
            scores[kind] += 3 if i < 3 and len(line) < 40 else 2 if kind == "letter" else 1
    if not scores:
        return None
    kind, score = scores.most_common(1)[0]
    return kind if score >= 1 else None


def guess_language(text: str) -> str | None:
    sample = text[:20_000]
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return None
    if sum("а" <= c.lower() <= "я" or c in "ёЁ" for c in letters) / len(letters) > 0.3:
        return "ru"
    words = Counter(re.findall(r"[a-zäöüßàâçéèêëîïôûù]+", sample.lower()))
    scores = {lang: sum(words[w] for w in stop) for lang, stop in STOPWORDS.items() if lang != "ru"}
    if any(ch in sample for ch in "äöüß"):
        scores["de"] = scores.get("de", 0) + 2
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] > 0 else "en"


# ---- parties, title, summary ------------------------------------------------------------------------
_LABEL_LINE = re.compile(r"^[^:]{1,40}:\s*")
_HEADING_ONLY = re.compile(
    r"^(invoice|rechnung|receipt|quittung|счет|счёт|счет-фактура|credit note|gutschrift|"
    r"contract|vertrag|договор|letter|brief|page \d+.*)$",
    re.I,
)
RECIPIENT_LABELS = re.compile(
    r"^(bill to|billed to|invoice to|ship to|recipient|customer|rechnungsempfänger|"
    r"empfänger|kunde|покупатель|плательщик|получатель|заказчик)\b\s*:?\s*(.*)$",
    re.I,
)
SENDER_LABELS = re.compile(
    r"^(from|seller|supplier|vendor|von|absender|lieferant|продавец|поставщик|"
    r"исполнитель)\s*:\s*(.+)$",
    re.I,
)
SUBJECT_LABELS = re.compile(r"^(subject|re|betreff|betrifft|тема|по вопросу)\s*:\s*(.+)$", re.I)


def _name_like(line: str) -> bool:
    s = line.strip()
    return (
        3 <= len(s) <= 120
        and any(c.isalpha() for c in s)
        and not _HEADING_ONLY.match(s)
        and not find_dates(s)
        and ":" not in s
        and "@" not in s
    )


def find_sender(lines: list[str]) -> str | None:
    for line in lines[:40]:
        m = SENDER_LABELS.match(line.strip())
        if m:
            return m.group(2).strip()
    for line in lines[:6]:  # the letterhead
        if _name_like(line) and not re.search(r"\d", line):
            return line.strip()
    return None


def find_recipient(lines: list[str], sender: str | None, kind: str | None) -> str | None:
    for i, line in enumerate(lines[:80]):
        m = RECIPIENT_LABELS.match(line.strip())
        if m:
            rest = m.group(2).strip()
            if rest:
                return rest
            for nxt in lines[i + 1 : i + 3]:
                if _name_like(nxt):
                    return nxt.strip()
    if kind == "letter" and sender:
        # Letter layout: sender block (name, address lines), then the recipient's name.
        start = next((i for i, ln in enumerate(lines[:10]) if ln.strip() == sender), None)
        if start is not None:
            for line in lines[start + 1 : start + 10]:
                if SUBJECT_LABELS.match(line) or any(w in line.lower() for w in TYPE_KEYWORDS["letter"]):
                    break  # the body starts; no recipient block seen
                if _LABEL_LINE.match(line):
                    continue  # date, reference: some layouts put them between the two blocks
                if _name_like(line) and not re.search(r"\d", line):
                    return line.strip()
    return None


def find_title(lines: list[str], kind: str | None, number: str | None, sender: str | None) -> str | None:
    for line in lines[:60]:
        m = SUBJECT_LABELS.match(line.strip())
        if m:
            return m.group(2).strip()[:300]
    if kind == "invoice" and number:
        return f"Invoice {number}" + (f" from {sender}" if sender else "")
    for line in lines[:5]:
        s = line.strip()
        if len(s) >= 4 and any(c.isalpha() for c in s):
            return s[:300]
    return None


def summarize(fields: dict[str, Any], body: str) -> str | None:
    if fields.get("document_type") == "invoice" and (
        fields.get("invoice_number") or fields.get("total_amount")
    ):
        parts = ["Invoice"]
        if fields.get("invoice_number"):
            parts.append(fields["invoice_number"])
        if fields.get("sender"):
            parts.append(f"from {fields['sender']}")
        if fields.get("recipient"):
            parts.append(f"to {fields['recipient']}")
        if fields.get("document_date"):
            parts.append(f"dated {fields['document_date']}")
        text = " ".join(parts)
        if fields.get("total_amount"):
            text += f", total {fields['total_amount']} {fields.get('currency') or ''}".rstrip()
        if fields.get("due_date"):
            text += f", due {fields['due_date']}"
        return text + "."
    # Otherwise: the first sentences of running text (lines of several words, not the address block).
    prose = " ".join(ln.strip() for ln in body.splitlines() if len(ln.split()) >= 5)
    sentences = re.split(r"(?<=[.!?])\s+", prose)
    summary = " ".join(sentences[:3]).strip()
    return summary[:500] or None


CATEGORY_BY_TYPE = {
    "invoice": "Invoices",
    "receipt": "Receipts",
    "contract": "Contracts",
    "letter": "Correspondence",
    "bank_statement": "Banking",
    "payslip": "Salary",
    "tax_document": "Taxes",
}


def extract(text: str) -> dict[str, Any]:
    """The fields the rules find in `text`, as JSON-ready values (dates ISO, amounts as strings)."""
    lines = [
        ln.strip()
        for ln in text.replace("\r", "").splitlines()
        if ln.strip() and not ln.startswith("--- page")
    ]
    kind = guess_type(lines)
    sender = find_sender(lines)
    number = _first_group(INVOICE_NO, text)
    doc_date = _labelled_date(lines, DOC_DATE_LABELS)
    if doc_date is None:
        dates = find_dates(text)
        doc_date = dates[0][1] if dates else None
    amounts = find_amounts(lines)
    fields: dict[str, Any] = {
        "document_type": kind or "other",
        "title": find_title(lines, kind, number, sender),
        "document_date": doc_date.isoformat() if doc_date else None,
        "sender": sender[:300] if sender else None,
        "recipient": (find_recipient(lines, sender, kind) or "")[:300] or None,
        "invoice_number": number,
        "customer_number": _first_group(CUSTOMER_NO, text),
        "total_amount": str(amounts["total"]) if "total" in amounts else None,
        "net_amount": str(amounts["net"]) if "net" in amounts else None,
        "tax_amount": str(amounts["tax"]) if "tax" in amounts else None,
        "currency": find_currency(text) if amounts else None,
        "due_date": (d.isoformat() if (d := _labelled_date(lines, DUE_DATE_LABELS)) else None),
        "iban": find_iban(text),
        "language": guess_language(text),
        "suggested_categories": [CATEGORY_BY_TYPE[kind]] if kind in CATEGORY_BY_TYPE else [],
    }
    fields["summary"] = summarize(fields, text)
    return fields


class BuiltinProvider:
    name = "builtin"
    model = MODEL
    budget_chars = DEFAULT_BUDGET_CHARS * 4  # no model context to respect; only bound the work

    async def analyze(
        self, text: str, instructions: str, schema: dict[str, Any]
    ) -> tuple[dict[str, Any], Usage]:
        started = time.perf_counter()
        # Regexes over a few hundred KB take tens of ms: off the event loop so the worker stays responsive.
        fields = await asyncio.to_thread(extract, text)
        return fields, Usage(model=MODEL, latency_ms=(time.perf_counter() - started) * 1000)

    async def ping(self) -> str:
        return MODEL

    async def aclose(self) -> None:
        return None
