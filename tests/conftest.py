"""The test harness: a real nats-server and a real PostgreSQL per test process, on free ports.

One stack per xdist worker (or per plain pytest run): every service of `infra.catalog` runs
in-process against it and the gateway is served over real HTTP by uvicorn. Tests isolate
themselves by creating their own users (see `new_user`), never by relying on order.
"""

from __future__ import annotations

import asyncio
import email as email_parser
import email.policy as email_policy
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio
import uvicorn

from infra import catalog
from infra.embedded import EmbeddedNats, EmbeddedPostgres, free_port, provision
from infra.shared import corpus_dir
from services.kit import migrations
from services.kit.bus import Service
from services.kit.config import NATS_SECRETS_FILE, NatsLogin, ServiceSettings, nats_login

ROOT = Path(__file__).resolve().parent.parent
CORPUS = corpus_dir()
PASSWORD = "a sturdy passphrase 42"
# Connections named so provoke NATS permission violations on purpose (tests/security/test_nats_permissions.py).
NATS_PROBE = "probe-"


@dataclass
class Stack:
    data_dir: Path
    nats: EmbeddedNats
    pg: EmbeddedPostgres
    db_urls: dict[str, str]
    base_url: str = ""
    services: dict[str, Service] = field(default_factory=dict)
    server: Any = None
    nc: Any = None

    @property
    def nats_url(self) -> str:
        return self.nats.url

    def nats_login(self, user: str) -> NatsLogin:
        """A process's own NATS user (infra/nats); a test's ad-hoc service runs as the operator."""
        from infra.nats.accounts import OPERATOR, users

        return nats_login(user if user in users() else OPERATOR, self.data_dir)

    def settings(self, name: str) -> ServiceSettings:
        return ServiceSettings(
            name=name,
            nats_url=self.nats.url,
            database_url=self.db_urls.get(name, ""),
            schema=name,
            data_dir=self.data_dir,
            platform_secret="test-platform-secret-0123456789",
            nats_login=self.nats_login(name),
        )

    async def start_service(self, name: str) -> Service:
        svc = catalog.spec(name).load()(self.settings(name))
        await svc.start()
        return svc

    def start_process(self, module: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
        """`python -m <module>` of this checkout against the stack's NATS, as its own process (output into
        `log`), with the test's environment plus `env`."""
        environ = {**os.environ, "NATS_URL": self.nats_url, "PYTHONPATH": str(ROOT), **env}
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=environ,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )


def selected_services() -> list[catalog.ServiceSpec]:
    """All services, or only those named in ATRIUM_TEST_SERVICES (comma-separated) while developing one."""
    only = [n for n in os.environ.get("ATRIUM_TEST_SERVICES", "").split(",") if n]
    return [s for s in catalog.SERVICES if not only or s.name in only]


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest_asyncio.fixture(scope="session")
async def stack(stack_dir: Path) -> AsyncIterator[Stack]:
    os.environ.setdefault("ATRIUM_SECRET", "test-platform-secret-0123456789")
    # Every test client comes from 127.0.0.1; per-IP auth rate limits are tested with X-Forwarded-For IPs.
    os.environ.setdefault("ATRIUM_AUTH_RATE_EXEMPT_IPS", "127.0.0.1")
    # The tests' model server (tests/fakes_llm) listens on 127.0.0.1: local model servers are allowed here.
    os.environ.setdefault("ATRIUM_AI_ALLOW_LOCAL_SERVERS", "1")
    n = EmbeddedNats(stack_dir).start()
    MAIL_DIR[:] = [Path(os.environ.get("ATRIUM_MAIL_DIR", str(stack_dir / "mail")))]
    # Every process, CLI command and worker a test starts finds its NATS user's password here.
    os.environ["ATRIUM_NATS_SECRETS"] = str(stack_dir / "secrets" / NATS_SECRETS_FILE)
    pg = EmbeddedPostgres(stack_dir).start()
    try:
        urls = await provision(pg.admin_url, stack_dir)
        for spec in catalog.SERVICES:
            if spec.has_db and migrations.has_migrations(spec.name):
                await migrations.upgrade(spec.name, urls[spec.name], spec.name)
        st = Stack(stack_dir, n, pg, urls)
        port = free_port()
        # The services know the stack by the URL a browser uses: passkeys are bound to its host and origin
        # (WebAuthn refuses an IP address as the relying party, hence `localhost`).
        os.environ["ATRIUM_PUBLIC_URL"] = f"http://localhost:{port}"
        for spec in selected_services():
            st.services[spec.name] = await st.start_service(spec.name)
        from gateway.app import create_app
        from gateway.settings import GatewaySettings

        # web/dist: the built web app for the browser tests (tests/e2e builds it); a placeholder page until then.
        gw_settings = GatewaySettings(
            nats_url=n.url,
            data_dir=stack_dir,
            web_dist=ROOT / "web" / "dist",
            expected_services=tuple(st.services),
        )
        config = uvicorn.Config(
            create_app(gw_settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        st.server, st.base_url = server, f"http://127.0.0.1:{port}"
        st.nc = await nats.connect(n.url, **st.nats_login("operator").connect_options())
        yield st
        await st.nc.close()
        server.should_exit = True
        await task
        for svc in st.services.values():
            await svc.stop()
        # The proof the permissions fit: nothing any process did all session was refused.
        from infra.nats.accounts import permission_violations

        refused = [
            v
            for v in permission_violations(n.log_path.read_text(errors="replace"))
            if not v.connection.startswith(NATS_PROBE)
        ]
        assert not refused, f"NATS refused these (add them to infra/nats/accounts.py if needed): {refused}"
    finally:
        pg.stop()
        n.stop()


@pytest_asyncio.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh client per test, so cookies never leak from one test into another."""
    async with httpx.AsyncClient(base_url=stack.base_url + "/api/v1", timeout=30) as client:
        yield client


@dataclass
class AppUser:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


# Where the harness's auth service writes its mails (the dev outbox), set when the stack starts.
MAIL_DIR: list[Path] = []
_LINK_TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


def newest_link_token(address: str, subject_word: str, mail_dir: Path | None = None) -> str:
    """The token in the newest dev-outbox mail to `address` whose subject has `subject_word` (in the
    harness's outbox, or `mail_dir`)."""
    found = []
    for path in sorted((mail_dir or MAIL_DIR[0]).glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email_parser.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        if msg["To"] == address and subject_word.lower() in str(msg["Subject"]).lower():
            match = _LINK_TOKEN.search(msg.get_content())  # type: ignore[attr-defined]
            if match:
                found.append(match.group(1))
    assert found, f"no mail about {subject_word!r} to {address}"
    return found[-1]


async def confirm_address(http: httpx.AsyncClient, email: str) -> None:
    """Open the confirmation link mailed to `email`, as its owner would (signing in needs it)."""
    r = await http.post("/auth/email/verify", json={"token": newest_link_token(email, "confirm")})
    assert r.status_code == 200, r.text


async def register_and_login(
    http: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, *, confirm: bool = True
) -> AppUser:
    """Register, confirm the address by the mailed link (`confirm=False` skips it: signing in then needs
    `unconfirmed_signin`), sign in."""
    email = email or unique_email()
    r = await http.post("/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    if confirm:
        await confirm_address(http, email)
    r = await http.post("/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return AppUser(body["user"]["id"], email, password, body["access_token"], body["refresh_token"])


@pytest.fixture
def unconfirmed_signin(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let accounts with an unconfirmed address sign in during one test (ATRIUM_SIGNIN_REQUIRES_VERIFIED_EMAIL=0),
    for the flows only such an account has (asking for another confirmation link)."""
    from services.auth.handlers.common import AuthDeps

    monkeypatch.setattr(
        stack.services["auth"].deps_as(AuthDeps).config, "signin_requires_verified_email", False
    )


@pytest_asyncio.fixture
async def new_user(http: httpx.AsyncClient) -> AppUser:
    return await register_and_login(http)


async def create_admin(stack: Stack) -> str:
    """A fresh administrator's email (password `PASSWORD`), made the way `atrium admin create` makes one."""
    from services.auth.admin import ensure_admin
    from services.kit.db import Database

    email = unique_email("admin")
    db = Database(stack.db_urls["auth"], "auth")
    try:
        await ensure_admin(db, email, PASSWORD, nc=stack.nc)
    finally:
        await db.dispose()
    return email


@pytest_asyncio.fixture
async def new_admin(stack: Stack, http: httpx.AsyncClient) -> AppUser:
    """A fresh, signed-in administrator."""
    email = await create_admin(stack)
    r = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["role"] == "admin", body
    return AppUser(body["user"]["id"], email, PASSWORD, body["access_token"], body["refresh_token"])


@pytest_asyncio.fixture
async def auth_db(stack: Stack) -> AsyncIterator[Any]:
    """The auth service's own database (services.kit.db.Database), to check that a refused request changed nothing."""
    from services.kit.db import Database

    db = Database(stack.db_urls["auth"], "auth")
    yield db
    await db.dispose()
