"""Documents in a real browser: upload corpus PDFs and watch them reach ready, search and filter,
bulk-assign a category, correct a field, re-process and see the correction kept, sign out."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.conftest import CORPUS, Stack

from .conftest import Browsing, screenshot, signed_in_user

FILES = ["invoice_1p.pdf", "letter_1p.pdf", "invoice_10p.pdf"]
TERMINAL = re.compile("^(ready|needs_ocr|failed)$")


async def wait_rows_ready(page, count: int) -> None:  # type: ignore[no-untyped-def]
    """Every upload row reaches `ready` (the pipeline is real: text worker, then AI worker)."""
    rows = page.get_by_test_id("upload-row")
    await rows.nth(count - 1).wait_for()
    for i in range(count):
        await page.wait_for_function(
            "([i]) => document.querySelectorAll('[data-testid=upload-row]')[i]?.dataset.stage === 'ready'",
            arg=[i],
            timeout=120_000,
        )


async def test_upload_search_categorise_correct_reprocess(stack: Stack, browsing: Browsing) -> None:
    _, page = await signed_in_user(stack, browsing)

    await page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Documents").click()
    await page.get_by_text("No documents yet").wait_for()
    await screenshot(page, "documents-empty-light")

    await page.set_input_files("#upload-input", [str(CORPUS / "synthetic" / f) for f in FILES])
    await wait_rows_ready(page, len(FILES))
    await page.get_by_test_id("documents-total").filter(has_text="3 documents").wait_for()
    await screenshot(page, "documents-ready-light")

    # The upload list and every status survive a reload: the state comes from the API.
    await page.reload()
    await wait_rows_ready(page, len(FILES))
    assert await page.get_by_test_id("document-row").count() == 3

    # Full-text search narrows the list to the one letter with this reference.
    await page.get_by_label("Search documents").fill("REF-27965")
    await page.get_by_test_id("documents-total").filter(has_text="1 document").wait_for()
    await page.get_by_test_id("document-row").filter(has_text="letter_1p.pdf").wait_for()
    await page.get_by_label("Search documents").fill("")
    await page.get_by_test_id("documents-total").filter(has_text="3 documents").wait_for()

    # A filter: only failed documents — there are none, and the empty state says what to do.
    await page.get_by_role("button", name="Filters").click()
    await page.get_by_role("group", name="Status").get_by_role("button", name="Failed").click()
    await page.get_by_text("Nothing matches").wait_for()
    await page.get_by_role("button", name="Clear filters").first.click()
    await page.get_by_test_id("documents-total").filter(has_text="3 documents").wait_for()

    # A category, then a bulk assignment to every document.
    await page.goto("/categories")
    await page.get_by_label("New category").fill("Paperwork")
    await page.get_by_role("button", name="Create", exact=True).click()
    await page.get_by_role("link", name="Paperwork").wait_for()
    await page.goto("/documents")
    await page.get_by_label("Select all on this page").click()
    await page.get_by_test_id("selection-count").filter(has_text="3 selected").wait_for()
    await page.get_by_role("button", name="Assign category").click()
    await page.get_by_label("Category", exact=True).select_option(label="Paperwork")
    await page.get_by_role("button", name="Apply").click()
    await page.get_by_text("Category assigned to 3 documents", exact=True).wait_for()
    for row in await page.get_by_test_id("document-row").all():
        await row.get_by_text("Paperwork").wait_for()
    await screenshot(page, "documents-categorised-light")

    # Open the invoice and correct a field by hand.
    await page.get_by_role(
        "link", name=re.compile("invoice_1p|Synthetic invoice \\(1 pages\\)|INVOICE")
    ).first.click()
    await page.get_by_role("tab", name="Fields").wait_for()
    sender = page.get_by_test_id("field-sender")
    await sender.get_by_role("button", name="Edit Sender").click()
    await sender.get_by_label("Sender").fill("Blue Harbor (checked by hand)")
    await sender.get_by_role("button", name="Save").click()
    await (
        page.get_by_test_id("field-sender-value").filter(has_text="Blue Harbor (checked by hand)").wait_for()
    )
    await expect(sender).to_have_attribute("data-source", "user")
    await screenshot(page, "document-detail-light")

    # Re-process: the pipeline runs again and the user's correction is kept.
    await page.get_by_role("button", name="Re-process").click()
    await page.get_by_text("Re-processing started", exact=True).wait_for()
    await page.get_by_role("tab", name="Task history").click()
    await page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=task-table] tbody tr').length >= 3", timeout=120_000
    )
    await page.wait_for_function(
        "() => !document.querySelector('[role=status] [role=progressbar]')", timeout=120_000
    )
    await page.reload()
    await page.get_by_role("tab", name="Fields").click()
    await (
        page.get_by_test_id("field-sender-value").filter(has_text="Blue Harbor (checked by hand)").wait_for()
    )
    await expect(page.get_by_test_id("field-sender")).to_have_attribute("data-source", "user")

    await page.get_by_role("button", name="Account menu").click()
    await page.get_by_role("menuitem", name="Sign out").click()
    await page.wait_for_url(re.compile(r"/sign-in\?reason=signed_out"))


async def drop_files(page, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Drops corpus files on the drop zone the way a desktop file manager does (a DataTransfer)."""
    files = [{"name": n, "data": list((CORPUS / "synthetic" / n).read_bytes())} for n in names]
    await page.get_by_test_id("dropzone").evaluate(
        """(zone, files) => {
            const dt = new DataTransfer();
            for (const f of files) dt.items.add(new File([new Uint8Array(f.data)], f.name, {type: "application/pdf"}));
            zone.dispatchEvent(new DragEvent("dragover", {bubbles: true, dataTransfer: dt}));
            zone.dispatchEvent(new DragEvent("drop", {bubbles: true, dataTransfer: dt}));
        }""",
        files,
    )


async def test_drop_upload_then_bulk_reprocess_and_delete_with_confirmation(
    stack: Stack, browsing: Browsing
) -> None:
    _, page = await signed_in_user(stack, browsing)
    await page.goto("/documents")
    await drop_files(page, ["invoice_1p.pdf", "letter_1p.pdf"])
    await wait_rows_ready(page, 2)
    await page.get_by_test_id("documents-total").filter(has_text="2 documents").wait_for()

    await page.get_by_label("Select all on this page").click()
    await page.get_by_role("toolbar").get_by_role("button", name="Re-process").click()
    await page.get_by_text("2 documents queued for re-processing", exact=True).wait_for()

    # Deleting asks first; Cancel leaves everything as it was.
    await page.get_by_label("Select all on this page").click()
    await page.get_by_role("toolbar").get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("alertdialog", name="Delete 2 documents?")
    await dialog.wait_for()
    await screenshot(page, "documents-delete-confirm-light")
    await dialog.get_by_role("button", name="Cancel").click()
    assert await page.get_by_test_id("document-row").count() == 2
    # The re-processed documents are still tracked live; a poll in flight as they vanish gets 404: expected.
    page.errors.allow.append("status of 404")
    await page.get_by_role("toolbar").get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await page.get_by_text("2 documents deleted", exact=True).wait_for()
    await page.get_by_text("No documents yet").wait_for()
