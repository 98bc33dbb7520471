"""OCR in a real browser: a scanned invoice uploaded on the Documents page passes through OCR to ready, its
page shows the recognised text and how it was read, and "PDF with text layer" downloads a PDF whose text
a viewer finds; an administrator sees the OCR card of the Documents settings with the installed languages
and switches the mode."""

from __future__ import annotations

import re

import pypdfium2 as pdfium
from playwright.async_api import expect

from tests.conftest import CORPUS, Stack, create_admin

from .conftest import Browsing, screenshot, sign_in, signed_in_user

SCAN = CORPUS / "scanned" / "scan_invoice_1p.pdf"


async def test_a_scan_reaches_ready_with_its_text_and_a_text_layer_download(
    stack: Stack, browsing: Browsing
) -> None:
    _, page = await signed_in_user(stack, browsing)
    await page.goto("/documents")
    await page.set_input_files("#upload-input", [str(SCAN)])
    await page.wait_for_function(
        "() => document.querySelector('[data-testid=upload-row]')?.dataset.stage === 'ready'", timeout=300_000
    )
    await page.get_by_test_id("upload-row").get_by_role("link", name="scan_invoice_1p.pdf").click()
    await page.get_by_role("tab", name=re.compile(r"Text \(1 page\)")).click()
    await page.get_by_text(re.compile("Invoice number: INV-2091827")).first.wait_for()
    await expect(page.get_by_test_id("page-ocr")).to_contain_text(re.compile(r"Read by OCR \(tesseract 5"))
    await screenshot(page, "document-ocr-text-light")

    link = page.get_by_role("link", name="PDF with text layer")
    await expect(link).to_have_attribute("download", "scan_invoice_1p.ocr.pdf")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    layered = pdfium.PdfDocument(await download.path())
    try:
        assert "INV-2091827" in layered[0].get_textpage().get_text_range()
    finally:
        layered.close()


async def test_the_ocr_settings_card(stack: Stack, browsing: Browsing) -> None:
    page = await browsing.new_page()
    await sign_in(page, await create_admin(stack))
    await page.goto("/admin/documents")
    await page.get_by_text("OCR (scanned pages)").wait_for()
    english = page.get_by_label(re.compile(r"English \(eng\)"))
    await expect(english).to_be_checked()
    await expect(english).to_be_disabled()  # the last chosen language cannot be unticked
    await page.get_by_label("OCR mode").select_option("off")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_text("Settings saved", exact=True).wait_for()
    await page.reload()
    await expect(page.get_by_label("OCR mode")).to_have_value("off")
    await screenshot(page, "admin-documents-settings-ocr-light")
    # Put the shared settings back for the other tests on this stack.
    await page.get_by_label("OCR mode").select_option("scanned")
    await page.get_by_role("button", name="Save", exact=True).click()
    await page.get_by_text("Settings saved", exact=True).wait_for()
