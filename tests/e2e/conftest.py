"""Browser tests: Debian's chromium driven by Playwright against the real stack of tests/conftest.py.

The web app is built once per run (`infra.web.build`: skipped when web/dist is newer than its sources); the gateway
of the `stack` fixture serves it. Every page records console errors and uncaught exceptions, and a
test fails if any appeared that it did not expect. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import expect

from infra import web
from tests.conftest import PASSWORD, ROOT, AppUser, Stack, register_and_login

# How long an expectation waits for the page to get there. Playwright's 5 s default was exceeded once in CI
# (a page reload's requests at the end of the suite, beside the OCR tests on the other core; the same test
# passed alone in 31 s): waiting longer changes no assertion, only how slow a loaded machine may be.
expect.set_options(timeout=15_000)

DIST = web.DIST
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("ATRIUM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_\-]+)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: browser tests (real chromium against the real stack); select with -m e2e"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


def build_web() -> None:
    """`infra.web.build`: install when the lock changed, refresh the OpenAPI, build when `dist` is stale."""
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm (Node.js 20+) is required to build the web app for the browser tests")
    web.build(npm)


@pytest.fixture(scope="session")
def web_dist() -> Path:
    # pytest-xdist workers share web/: one builds while the others wait, then find it fresh.
    with open(Path(tempfile.gettempdir()) / "atrium-web-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            build_web()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return DIST


@pytest_asyncio.fixture(scope="session")
async def browser(web_dist: Path) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install chromium (or set ATRIUM_CHROMIUM)")
    async with async_playwright() as pw:
        # Playwright gives every launch a fresh temporary profile (user-data dir) of its own.
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        await b.close()


@dataclass
class PageErrors:
    """Console errors and uncaught exceptions of one page; `allow` lists patterns a test expects."""

    messages: list[str] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(re.search(a, m) for a in self.allow)]


@dataclass
class Browsing:
    stack: Stack
    browser: object
    contexts: list = field(default_factory=list)
    errors: list[PageErrors] = field(default_factory=list)

    async def new_page(
        self,
        *,
        width: int = 1280,
        height: int = 860,
        color_scheme: str = "light",
        base_url: str | None = None,
        locale: str = "en-US",
    ):
        ctx = await self.browser.new_context(  # type: ignore[attr-defined]
            base_url=base_url or self.stack.base_url,
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,
            locale=locale,
            accept_downloads=True,
        )
        ctx.set_default_timeout(15_000)
        self.contexts.append(ctx)
        page = await ctx.new_page()
        errs = PageErrors()
        self.errors.append(errs)
        page.on(
            "console",
            lambda msg: errs.messages.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: errs.messages.append(f"pageerror: {exc}"))
        page.errors = errs  # type: ignore[attr-defined]
        return page

    async def close(self) -> None:
        for ctx in self.contexts:
            await ctx.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest_asyncio.fixture
async def browsing(request: pytest.FixtureRequest, stack: Stack, browser: object) -> AsyncIterator[Browsing]:
    b = Browsing(stack, browser)
    yield b
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        # What the browser showed when the test failed, for whoever reads the CI artifacts.
        for i, ctx in enumerate(b.contexts):
            for j, page in enumerate(ctx.pages):
                await screenshot(page, f"FAILED-{request.node.name}-{i}-{j}")
    await b.close()
    problems = [m for e in b.errors for m in e.unexpected()]
    assert not problems, "errors in the browser console:\n" + "\n".join(problems)


async def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _mail_tokens(stack: Stack, address: str, subject_word: str) -> list[str]:
    found = []
    for path in sorted((stack.data_dir / "mail").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == address and subject_word.lower() in str(msg["Subject"]).lower():
            match = TOKEN_IN_LINK.search(msg.get_content())  # type: ignore[attr-defined]
            if match:
                found.append(match.group(1))
    return found


async def mail_token(stack: Stack, address: str, subject_word: str, timeout_s: float = 10.0) -> str:
    """The token of the newest dev-outbox mail to `address` whose subject has `subject_word` (waits for it)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        tokens = _mail_tokens(stack, address, subject_word)
        if tokens:
            return tokens[-1]
        assert asyncio.get_running_loop().time() < deadline, f"no mail about {subject_word!r} to {address}"
        await asyncio.sleep(0.1)


async def sign_in(page, email_address: str, password: str = PASSWORD, *, remember: bool = False) -> None:  # type: ignore[no-untyped-def]
    await page.goto("/sign-in")
    await page.get_by_label("Email").fill(email_address)
    await page.get_by_label("Password", exact=True).fill(password)
    if remember:
        await page.get_by_label("Remember me").check()
    await page.get_by_role("button", name="Sign in", exact=True).click()
    # Up to 30 s: a new browser context boots the whole app, then the password hash and the dashboard's
    # queries; CI's busiest minutes (OCR on the other worker) once took longer than 15 s, the page then shown.
    await page.get_by_role("heading", name=re.compile("^Welcome")).wait_for(timeout=30_000)


async def signed_in_user(stack: Stack, browsing: Browsing) -> tuple[AppUser, Any]:
    """A fresh user, registered over the API, and a browser page signed in as them."""
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as http:
        user = await register_and_login(http)
    page = await browsing.new_page()
    await sign_in(page, user.email)
    return user, page
