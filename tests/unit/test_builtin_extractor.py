"""The offline extractor on the generated corpus: it must find the known dates, amounts and numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache

import pypdfium2
import pytest

from contracts.documents import ExtractedFields
from services.extraction.ai.providers.builtin import extract, find_iban, iban_valid, parse_amount
from tests.conftest import CORPUS

SYNTHETIC = CORPUS / "synthetic"


@cache
def expected() -> dict:
    return json.loads((SYNTHETIC / "expected.json").read_text())


@cache
def page_texts(name: str) -> list[str]:
    pdf = pypdfium2.PdfDocument(str(SYNTHETIC / name))
    try:
        return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    finally:
        pdf.close()


def amount(s: str) -> Decimal:
    return Decimal(s.replace(",", ""))


def invoice_pages() -> list[tuple[str, int]]:
    """Every page of the 1- and 10-page invoices, every 7th page of the 100-page one (each page is an invoice)."""
    pages = []
    for name, doc in expected().items():
        if doc["kind"] == "invoice":
            pages += [(name, i) for i in range(doc["pages"]) if doc["pages"] <= 10 or i % 7 == 0]
    return pages


@pytest.mark.parametrize(("name", "index"), invoice_pages())
def test_invoice_fields(name: str, index: int) -> None:
    want = expected()[name]["page_data"][index]["fields"]
    got = ExtractedFields.model_validate(extract(page_texts(name)[index]))
    assert got.document_type == "invoice"
    assert got.invoice_number == want["invoice_number"]
    assert str(got.document_date) == want["invoice_date"] and str(got.due_date) == want["due_date"]
    assert got.total_amount == amount(want["total"])
    assert got.net_amount == amount(want["subtotal"])
    assert got.tax_amount == amount(want["vat"])
    assert got.currency == want["currency"]
    assert got.sender == want["seller"] and got.recipient == want["buyer"]
    assert got.title and want["invoice_number"] in got.title
    assert got.summary and want["invoice_number"] in got.summary
    assert got.language == "en" and got.suggested_categories == ["Invoices"]


@pytest.mark.parametrize("name", [n for n, d in expected().items() if d["kind"] == "letter"])
def test_letter_fields(name: str) -> None:
    want = expected()[name]["page_data"][0]["fields"]
    got = ExtractedFields.model_validate(extract(page_texts(name)[0]))
    assert got.document_type == "letter"
    assert str(got.document_date) == want["date"]
    assert got.sender == want["sender"] and got.recipient == want["recipient"]
    assert got.title and got.title in want["subject"]


def test_a_whole_multi_page_invoice_validates() -> None:
    text = "\n".join(f"--- page {i + 1} ---\n{t}" for i, t in enumerate(page_texts("invoice_10p.pdf")))
    got = ExtractedFields.model_validate(extract(text))
    first = expected()["invoice_10p.pdf"]["page_data"][0]["fields"]
    assert got.invoice_number == first["invoice_number"] and got.sender == first["seller"]


def test_german_invoice() -> None:
    text = """Müller Bürobedarf GmbH
Hauptstraße 5, 80331 München
RECHNUNG
Rechnungsnummer: RE-2024-0815
Kundennummer: K-4711
Rechnungsdatum: 14.02.2024
Zahlbar bis: 15. März 2024
Rechnungsempfänger: Schmidt & Partner KG
Nettobetrag 1.234,50 €
MwSt. 19 % 234,56 €
Gesamtbetrag 1.469,06 €
Bitte überweisen Sie den Betrag auf das Konto IBAN DE89 3704 0044 0532 0130 00.
"""
    got = ExtractedFields.model_validate(extract(text))
    assert got.document_type == "invoice" and got.invoice_number == "RE-2024-0815"
    assert got.customer_number == "K-4711"
    assert str(got.document_date) == "2024-02-14" and str(got.due_date) == "2024-03-15"
    assert got.total_amount == Decimal("1469.06") and got.net_amount == Decimal("1234.50")
    assert got.tax_amount == Decimal("234.56") and got.currency == "EUR"
    assert got.iban == "DE89370400440532013000" and got.language == "de"
    assert got.sender == "Müller Bürobedarf GmbH" and got.recipient == "Schmidt & Partner KG"


def test_russian_invoice() -> None:
    text = """ООО «Ромашка»
г. Москва, ул. Ленина, д. 1
Счет на оплату № 345 от 5 апреля 2024 г.
Покупатель: ООО «Василёк»
Сумма без НДС: 10 000,00 руб.
НДС 20%: 2 000,00 руб.
Итого к оплате: 12 000,00 руб.
Срок оплаты: 20.04.2024
"""
    got = ExtractedFields.model_validate(extract(text))
    assert got.document_type == "invoice" and got.language == "ru"
    assert str(got.document_date) == "2024-04-05" and str(got.due_date) == "2024-04-20"
    assert got.total_amount == Decimal("12000.00") and got.net_amount == Decimal("10000.00")
    assert got.tax_amount == Decimal("2000.00") and got.currency == "RUB"
    assert got.sender == "ООО «Ромашка»" and got.recipient == "ООО «Василёк»"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Kontoauszug Nr. 3/2024\nAnfangssaldo 1.000,00 EUR", "bank_statement"),
        ("Gehaltsabrechnung März 2024\nAuszahlung 2.345,00 EUR", "payslip"),
        ("Договор аренды № 12\nг. Казань", "contract"),
        ("RECEIPT\nThank you for shopping\nTotal 12.50 USD", "receipt"),
        ("Steuerbescheid für 2023\nFinanzamt Köln", "tax_document"),
        ("Lorem ipsum dolor sit amet", "other"),
    ],
)
def test_document_type_by_keywords(text: str, kind: str) -> None:
    assert extract(text)["document_type"] == kind


def test_iban_checksum() -> None:
    assert iban_valid("DE89370400440532013000") and iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("DE89370400440532013001")
    assert find_iban("IBAN DE89 3704 0044 0532 0130 01 please") is None


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("168,668.30", "168668.30"),
        ("168.668,30", "168668.30"),
        ("1 234,56", "1234.56"),
        ("1234", "1234"),
        ("12,5", "12.5"),
    ],
)
def test_amount_formats(raw: str, value: str) -> None:
    assert parse_amount(raw) == Decimal(value)
