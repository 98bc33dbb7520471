"""The load scenario of issue 16 (run by `python -m bench.bench_load`, or by hand against any stack):

    locust -f bench/locustfile.py --headless -u 200 -r 20 -t 60s --host http://127.0.0.1:8080

Each simulated user signs in with one of the `ATRIUM_LOAD_ACCOUNTS` accounts `load-<i>@example.com`
(made beforehand by bench_load, password `ATRIUM_LOAD_PASSWORD`), then, waiting 1–3 s between actions:
lists, searches, opens a document, asks who it is, uploads a small PDF, and follows live events (opens
the event stream and reads up to its `: connected` line). Requests are named by kind, not by URL.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

from locust import HttpUser, between, task

ACCOUNTS = int(os.environ.get("ATRIUM_LOAD_ACCOUNTS", "20"))
PASSWORD = os.environ.get("ATRIUM_LOAD_PASSWORD", "a sturdy load-test passphrase 7")
PDF = Path(os.environ.get("ATRIUM_LOAD_PDF", "")).read_bytes() if os.environ.get("ATRIUM_LOAD_PDF") else b""
API = "/api/v1"
TOKENS = (
    Path(os.environ["ATRIUM_LOAD_TOKENS"]).read_text().split() if os.environ.get("ATRIUM_LOAD_TOKENS") else []
)


class Reader(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        if TOKENS:  # signed in beforehand: the reads alone (bench_load --signed-in)
            self.headers = {"Authorization": f"Bearer {random.choice(TOKENS)}"}
        else:
            email = f"load-{random.randrange(ACCOUNTS)}@example.com"
            body = {"email": email, "password": PASSWORD}
            r = self.client.post(f"{API}/auth/login", json=body, name="sign in")
            self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"} if r.ok else {}
        self.client.cookies.clear()  # bearer only: no CSRF header needed for the upload
        self.ids: list[str] = []

    @task(4)
    def list_documents(self) -> None:
        r = self.client.get(f"{API}/documents", params={"limit": 50}, headers=self.headers, name="list")
        if r.ok:
            self.ids = [d["id"] for d in r.json()["items"]] or self.ids

    @task(2)
    def search(self) -> None:
        word = random.choice(["invoice", "total", "letter", "payment", "dear"])
        self.client.get(
            f"{API}/documents", params={"q": word, "limit": 20}, headers=self.headers, name="search"
        )

    @task(2)
    def open_document(self) -> None:
        if self.ids:
            doc = random.choice(self.ids)
            self.client.get(f"{API}/documents/{doc}", headers=self.headers, name="open a document")

    @task(1)
    def me(self) -> None:
        self.client.get(f"{API}/auth/me", headers=self.headers, name="me")

    @task(1)
    def upload(self) -> None:
        # The same small PDF with a unique trailing comment: a new document, not a duplicate.
        body = PDF + f"\n% {uuid.uuid4().hex}\n".encode()
        files = {"file": (f"load-{uuid.uuid4().hex[:8]}.pdf", body, "application/pdf")}
        self.client.post(f"{API}/documents", files=files, headers=self.headers, name="upload a small PDF")

    @task(1)
    def follow_live_events(self) -> None:
        with self.client.get(
            f"{API}/events",
            headers=self.headers,
            stream=True,
            name="live events (connect)",
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            for line in r.iter_lines():
                if line.startswith(b": connected"):
                    r.success()
                    return
            r.failure("the stream ended before `: connected`")
