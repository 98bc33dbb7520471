"""A real Prometheus (Debian's package) scrapes the running test stack and answers PromQL about a
document that was just processed, and about the requests that processed it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from infra.prometheus import INSTALL_HINT, EmbeddedPrometheus
from tests.conftest import CORPUS, AppUser, Stack
from tests.integration import docs_helpers as h
from tests.integration.test_documents_pipeline import wait_for_status


@pytest_asyncio.fixture
async def prometheus(stack: Stack) -> AsyncIterator[EmbeddedPrometheus]:
    if not shutil.which("prometheus"):
        pytest.fail(f"prometheus is not installed (.ci/run installs it): {INSTALL_HINT}")
    prom = EmbeddedPrometheus(stack.data_dir, scrape_interval_s=1).start()
    try:
        # The test process serves the metrics of every service and the gateway it runs.
        await prom.wait_for('up{job="atrium"} == 1', lambda r: len(r) >= 1)
        yield prom
    finally:
        prom.stop()


def value(result: list[dict]) -> float:
    return sum(float(r["value"][1]) for r in result)


async def test_prometheus_answers_about_a_document_just_processed(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, prometheus: EmbeddedPrometheus
) -> None:
    if not {"docs", "extract"} <= set(stack.services):
        pytest.skip("needs the documents service and the text worker")
    pages = 'sum(atrium_pipeline_pages_total{stage="extract"}) or vector(0)'
    created = 'sum(atrium_rpc_requests_total{subject="docs.document.create", outcome="ok"}) or vector(0)'
    uploads = (
        'sum(atrium_http_requests_total{route="/api/v1/documents", method="POST", status="201"}) or vector(0)'
    )
    queued = 'sum(atrium_rpc_queue_seconds_count{subject="docs.document.create"}) or vector(0)'
    before = {q: value(await prometheus.query(q)) for q in (pages, created, uploads, queued)}

    r = await h.upload(http, new_user, CORPUS / "synthetic" / "letter_10p.pdf", "letter_10p.pdf")
    assert r.status_code == 201, r.text
    doc_id = r.json()["documents"][0]["document"]["id"]
    final = {"ready"} if "ai" in stack.services else {"analyzing"}
    body = await wait_for_status(http, new_user, doc_id, final | {"failed", "needs_ocr"})
    assert body["status"] in final, body
    assert body["page_count"] == 10

    # Exactly this document's pages, its one create request and its one upload, once scraped.
    await prometheus.wait_for(pages, lambda r: value(r) == before[pages] + 10)
    await prometheus.wait_for(created, lambda r: value(r) == before[created] + 1)
    await prometheus.wait_for(uploads, lambda r: value(r) == before[uploads] + 1)
    # Its extraction's duration is in the stage histogram, and the service answered bus requests.
    # (Waited for, not read once: a scrape may fall between a counter's and a histogram's update.)
    await prometheus.wait_for(
        'sum(atrium_pipeline_stage_duration_seconds_count{stage="extract"})', lambda r: value(r) >= 1
    )
    await prometheus.wait_for(
        'sum(atrium_rpc_duration_seconds_sum{subject="docs.document.create"})', lambda r: value(r) > 0
    )
    # How long the create waited before its handler took it (the gateway's x-sent-at), and what stalls the
    # process: its event loop's lag and the collector's pauses are measured from start-up.
    await prometheus.wait_for(queued, lambda r: value(r) == before[queued] + 1)
    await prometheus.wait_for("sum(atrium_event_loop_lag_seconds_count)", lambda r: value(r) > 0)
    await prometheus.wait_for("sum(atrium_gc_pause_seconds_count)", lambda r: value(r) > 0)
    # The documents service counts it among the documents of its final status (its loop runs every 15 s).
    await prometheus.wait_for(
        f'atrium_documents{{status="{body["status"]}"}} >= 1', lambda r: len(r) == 1, timeout=45
    )
    # The alert rules are loaded, and none fires on this healthy stack.
    async with httpx.AsyncClient() as client:
        groups = (await client.get(f"{prometheus.url}/api/v1/rules")).json()["data"]["groups"]
    rules = {rule["name"]: rule["state"] for g in groups for rule in g["rules"]}
    assert "AtriumProcessDown" in rules and "AtriumDocumentsStuck" in rules, rules
    assert "firing" not in rules.values(), rules
