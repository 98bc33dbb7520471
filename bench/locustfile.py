"""The load scenario of issue 16 (run by `python -m bench.bench_load`, or by hand against any stack):

    locust -f bench/locustfile.py --headless -u 200 -r 20 -t 60s --host http://127.0.0.1:8080

Each simulated user signs in with one of the `ATRIUM_LOAD_ACCOUNTS` accounts `load-<i>@example.com`
(made beforehand by bench_load, password `ATRIUM_LOAD_PASSWORD`), then, waiting 1–3 s between actions:
lists, searches, opens a document, asks who it is, uploads a small PDF, and follows live events (opens
the event stream and reads up to its `: connected` line). Requests are named by kind, not by URL.

Like the web app, a user told to come back (503 with Retry-After: the sign-in burst is more password
hashing than the cores do in time) waits that long and signs in again — each such answer is counted on its
own row, "sign in: told to retry", not as a failure — and a user whose session is refused (401) signs in
again rather than failing every request after.
"""

from __future__ import annotations

import os
import random
import time
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
        self.ids: list[str] = []
        if TOKENS:  # signed in beforehand: the reads alone (bench_load --signed-in)
            self.headers = {"Authorization": f"Bearer {random.choice(TOKENS)}"}
        else:
            self.sign_in()

    def sign_in(self) -> None:
        email = f"load-{random.randrange(ACCOUNTS)}@example.com"
        body = {"email": email, "password": PASSWORD}
        self.headers = {}
        for _ in range(20):
            with self.client.post(f"{API}/auth/login", json=body, name="sign in", catch_response=True) as r:
                if r.status_code == 503 and r.headers.get("Retry-After"):
                    # Told to come back: not a failure of the sign-in, its own row, then wait as told.
                    r.request_meta["name"] = "sign in: told to retry"
                    r.success()
                    wait_s = float(r.headers["Retry-After"])
                elif r.ok:
                    self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                    break
                else:  # a failure, counted; try again after a pause, as a person would
                    r.failure(f"status {r.status_code}")
                    wait_s = 5.0
            time.sleep(wait_s * random.uniform(1.0, 1.5))  # spread the retries (gevent-aware sleep)
        self.client.cookies.clear()  # bearer only: no CSRF header needed for the upload

    def signed_in_again(self, status: int) -> bool:
        """After a 401 (the session refused), sign in again — as the web app sends one to the sign-in page."""
        if status != 401 or TOKENS:
            return False
        self.sign_in()
        return True

    @task(4)
    def list_documents(self) -> None:
        r = self.client.get(f"{API}/documents", params={"limit": 50}, headers=self.headers, name="list")
        if r.ok:
            self.ids = [d["id"] for d in r.json()["items"]] or self.ids
        self.signed_in_again(r.status_code)

    @task(2)
    def search(self) -> None:
        word = random.choice(["invoice", "total", "letter", "payment", "dear"])
        r = self.client.get(
            f"{API}/documents", params={"q": word, "limit": 20}, headers=self.headers, name="search"
        )
        self.signed_in_again(r.status_code)

    @task(2)
    def open_document(self) -> None:
        if self.ids:
            doc = random.choice(self.ids)
            r = self.client.get(f"{API}/documents/{doc}", headers=self.headers, name="open a document")
            self.signed_in_again(r.status_code)

    @task(1)
    def me(self) -> None:
        self.signed_in_again(self.client.get(f"{API}/auth/me", headers=self.headers, name="me").status_code)

    @task(1)
    def upload(self) -> None:
        # The same small PDF with a unique trailing comment: a new document, not a duplicate.
        body = PDF + f"\n% {uuid.uuid4().hex}\n".encode()
        files = {"file": (f"load-{uuid.uuid4().hex[:8]}.pdf", body, "application/pdf")}
        r = self.client.post(f"{API}/documents", files=files, headers=self.headers, name="upload a small PDF")
        self.signed_in_again(r.status_code)

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
