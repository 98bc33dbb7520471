"""`atrium seed`: demo data in the running stack, through the public API like any client would."""

from __future__ import annotations

import email
import email.policy
import os
import re
from pathlib import Path

import httpx

from .devstack import read_stack_info
from .shared import corpus_dir

ROOT = Path(__file__).resolve().parent.parent
DEMO_EMAIL = "demo@example.com"
CORPUS = corpus_dir() / "synthetic"


def run_seed(data: Path) -> int:
    info = read_stack_info(data)
    if not info:
        print(f"atrium: no running stack for --data {data}; start it with ./atrium up first")
        return 2
    password = os.environ.get("ATRIUM_DEMO_PASSWORD", "harbour lantern seven quiet")
    with httpx.Client(base_url=info["url"].replace("localhost", "127.0.0.1") + "/api/v1", timeout=60) as http:
        r = http.post(
            "/auth/register", json={"email": DEMO_EMAIL, "password": password, "full_name": "Demo User"}
        )
        if r.status_code not in (201, 409):
            print(f"atrium: could not create the demo user: {r.status_code} {r.text}")
            return 1
        # Signing in needs a confirmed address: open the link of the dev outbox, as the user would.
        token = _confirmation_token(data / "mail", DEMO_EMAIL)
        if token:
            http.post("/auth/email/verify", json={"token": token})
        r = http.post("/auth/login", json={"email": DEMO_EMAIL, "password": password})
        if r.status_code != 200:
            print(
                f"atrium: demo login failed: {r.status_code} {r.text} (open the confirmation link mailed to "
                f"{DEMO_EMAIL}, then run seed again)"
            )
            return 1
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        uploaded = 0
        samples = sorted(CORPUS.glob("*_1p.pdf")) + sorted(CORPUS.glob("*_10p.pdf"))
        if samples and http.get("/documents", headers=headers).status_code == 200:
            for pdf in samples:
                with open(pdf, "rb") as f:
                    r = http.post(
                        "/documents", headers=headers, files=[("files", (pdf.name, f, "application/pdf"))]
                    )
                uploaded += r.status_code in (200, 201, 202)
    print(f"atrium: demo user {DEMO_EMAIL} (password: {password}); {uploaded} documents uploaded")
    return 0


def _confirmation_token(mail_dir: Path, address: str) -> str | None:
    """The link token of the newest confirmation mail to `address` in the dev outbox, if there is one."""
    for path in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns, reverse=True):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == address and "confirm" in str(msg["Subject"]).lower():
            match = re.search(r"token=([A-Za-z0-9_\-]+)", msg.get_content())  # type: ignore[attr-defined]
            if match:
                return match.group(1)
    return None
