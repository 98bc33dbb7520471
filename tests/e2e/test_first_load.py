"""The sign-in page is the first thing everyone loads: it downloads only its own code, not the signed-in app
(route-level code splitting). Sizes, not timings."""

from __future__ import annotations

from tests.conftest import Stack

from .conftest import Browsing

# The JavaScript a first visit of the sign-in page may download (bytes; it was one 575 kB bundle).
SIGN_IN_JS_BUDGET = 250_000


async def test_first_load_of_login_downloads_under_250_kb_of_javascript(
    stack: Stack, browsing: Browsing
) -> None:
    page = await browsing.new_page()  # a fresh browser context: nothing cached
    scripts = []
    page.on("response", lambda r: scripts.append(r) if r.request.resource_type == "script" else None)
    await page.goto("/login")
    await page.get_by_role("heading", name="Sign in", level=1).wait_for()
    await page.wait_for_load_state("networkidle")

    transferred = decoded = 0
    for response in scripts:
        assert response.ok, f"{response.url}: {response.status}"
        transferred += (await response.request.sizes())["responseBodySize"]
        decoded += len(await response.body())
    urls = "\n".join(r.url for r in scripts)
    print(f"first load of /login: {len(scripts)} scripts, {transferred} bytes transferred, {decoded} decoded")
    assert transferred < SIGN_IN_JS_BUDGET, f"{transferred} bytes of JavaScript on the wire:\n{urls}"
    # The budget is the code itself: compression on the wire must not hide it growing.
    assert decoded < SIGN_IN_JS_BUDGET, f"{decoded} bytes of JavaScript:\n{urls}"
    # The signed-in app (shell, menus, pages) is not part of it.
    assert "SignedInShell" not in urls and "radix" not in urls, urls
