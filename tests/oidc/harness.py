"""Starting the real OpenID provider of tests/oidc/provider.mjs (node oidc-provider) for a test module, and
driving its sign-in page the way a browser would (no tests here). `npm install` runs the first time."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from infra.embedded import free_port

HERE = Path(__file__).resolve().parent
CLIENT_ID = "atrium"
CLIENT_SECRET = "atrium-test-client-secret-0123456789"
PROVIDER_IDS = ("testidp", "testidp-jit", "testidp-groups", "testidp-nolink", "testidp-browser")


def npm_install() -> None:
    if (HERE / "node_modules" / "oidc-provider").exists():
        return
    npm = shutil.which("npm")
    assert npm, "npm (Node.js 20+) is needed to run the OpenID provider of the single sign-on tests"
    subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=HERE, check=True)


@dataclass
class OidcProvider:
    public_url: str  # Atrium's, for the redirect URIs
    access_token_ttl: int = 3600
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def redirect_uri(self, provider_id: str) -> str:
        return f"{self.public_url}/sso/{provider_id}/callback"

    async def start(self) -> None:
        npm_install()
        env = {
            **os.environ,
            "PORT": str(self.port),
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "REDIRECT_URIS": ",".join(self.redirect_uri(p) for p in PROVIDER_IDS),
            "ACCESS_TOKEN_TTL": str(self.access_token_ttl),
            "DEBUG": "",
        }
        self.proc = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "provider.mjs"),
            cwd=HERE,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        assert line.startswith(b"listening"), line

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.proc = None

    async def control(self, **changes: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as c:
            r = await (
                c.post(f"{self.issuer}/_test/control", json=changes)
                if changes
                else c.get(f"{self.issuer}/_test/control")
            )
            return r.json()  # type: ignore[no-any-return]

    async def add_account(
        self, email: str, password: str = "provider password 1", **claims: Any
    ) -> dict[str, Any]:
        account = {"id": f"sub-{uuid.uuid4().hex[:12]}", "email": email, "password": password, **claims}
        async with httpx.AsyncClient() as c:
            assert (await c.post(f"{self.issuer}/_test/accounts", json=account)).status_code == 201
        return account

    async def sign_in(self, authorization_url: str, account: dict[str, Any]) -> dict[str, str]:
        """Go through the provider's sign-in page as `account`; returns the query of the redirect back
        to Atrium (`code`, `state`, or `error`), without following it."""
        async with httpx.AsyncClient(follow_redirects=False, timeout=20) as browser:
            url = authorization_url
            for _ in range(10):
                r = await browser.get(url)
                if r.status_code == 200 and "<form" in r.text:
                    form = {"login": account["email"], "password": account["password"]}
                    r = await browser.post(url.split("?")[0] + "/login", data=form)
                assert r.status_code in (302, 303), r.text[:500]
                url = urljoin(url, r.headers["location"])
                if url.startswith(self.public_url):
                    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        raise AssertionError("the provider never sent the browser back")


def provider_settings(provider: OidcProvider, provider_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "label": f"Test IdP {provider_id}",
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": "openid email profile groups",
        **changes,
    }
