"""`atrium backup` of a running `./atrium up` stack while uploads are in flight, `atrium restore` into a new
data directory, and the restored stack started for real: accounts, documents, files, previews, settings,
categories and avatars are there, what was unfinished at the dump finishes, and an upload works."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from contracts.documents import DOCUMENT_UPLOADED, OBJECT_BUCKET
from contracts.streams import DOCUMENTS_STREAM
from infra.backup import operator_login
from infra.devstack import read_stack_info
from infra.embedded import free_port
from tests.conftest import CORPUS, PASSWORD, unique_email
from tests.devstack import (
    DEADLINE_S,
    Up,
    all_documents,
    atrium,
    document,
    download,
    login,
    upload,
    wait_terminal,
)

pytestmark = pytest.mark.slow

FILES = [CORPUS / "synthetic" / n for n in ("invoice_1p.pdf", "letter_1p.pdf", "invoice_10p.pdf")]


def extract_process(up: Up) -> psutil.Process:
    assert up.proc is not None
    return next(
        p
        for p in psutil.Process(up.proc.pid).children(recursive=True)
        if "services.extraction.text" in " ".join(p.cmdline())
    )


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 90)).save(out, "PNG")
    return out.getvalue()


async def operator(data: Path, what: Any) -> Any:
    """Run `what(js)` as the stack's operator (the CLI's NATS user)."""
    import nats

    info = read_stack_info(data)
    assert info, "the stack is not running"
    nc = await nats.connect(info["nats_url"], **operator_login(data))
    try:
        return await what(nc.jetstream())
    finally:
        await nc.close()


async def drop_uploaded_event(js: Any, doc_id: str) -> None:
    """Delete the document's `events.docs.uploaded` from the stream, as if it had been consumed after the dump."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            msg = await js.get_last_msg(DOCUMENTS_STREAM.name, DOCUMENT_UPLOADED.subject)
        except Exception:
            msg = None
        if msg is not None and json.loads(msg.data)["document_id"] == doc_id:
            await js.delete_msg(DOCUMENTS_STREAM.name, msg.seq)
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the outbox did not publish the upload")


async def delete_original(js: Any, object_name: str) -> None:
    """The original's file gone while its row stays: a deletion that raced the backup's dump."""
    await (await js.object_store(OBJECT_BUCKET)).delete(object_name)


def object_name_of(data: Path, doc_id: str) -> str:
    """Read from the dump-side database: the row's object name (the API does not show it)."""
    from infra.embedded import running_pg_port

    password = (data / "secrets" / "pg_superuser").read_text().strip()
    port = running_pg_port(data)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, asyncpg, sys\n"
            "async def main():\n"
            f"    c = await asyncpg.connect(user='atrium_admin', password={password!r}, host='127.0.0.1', "
            f"port={port}, database='atrium')\n"
            f"    print(await c.fetchval('select object_name from docs.documents where id = $1', '{doc_id}'))\n"
            "asyncio.run(main())\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_backup_while_uploading_then_restore_and_use(tmp_path: Path) -> None:
    a = Up(tmp_path / "a", free_port())
    a.start()
    tar = tmp_path / "stack.tar"
    try:
        admin_email, email = unique_email("admin"), unique_email("owner")
        res = atrium(
            "admin", "create", "--email", admin_email, "--data", str(a.data), data=a.data,
            env={"ATRIUM_ADMIN_PASSWORD": PASSWORD},
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        admin = login(a.url, admin_email)
        r = httpx.patch(
            f"{a.url}/apps/documents/settings",
            headers=admin,
            json={"max_upload_mb": 33, "duplicate_policy": "mark", "task_retention_days": 77},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        a.register(email)
        user = login(a.url, email)
        avatar = png()
        r = httpx.put(f"{a.url}/profile/avatar", headers=user, content=avatar, timeout=30)
        assert r.status_code == 200, r.text
        avatar_stored = download(a.url, user, "/profile/avatar")
        r = httpx.post(f"{a.url}/categories", headers=user, json={"name": "Taxes 2024"}, timeout=30)
        assert r.status_code == 201, r.text
        category = r.json()

        docs = [upload(a.url, user, p) for p in FILES]
        for d in docs:
            assert wait_terminal(a.url, user, d["id"])["status"] == "ready"
        first = docs[0]["id"]
        r = httpx.post(
            f"{a.url}/documents/bulk",
            headers=user,
            json={"action": "assign_category", "ids": [first], "category_id": category["id"]},
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["succeeded"] == 1, r.text
        r = httpx.patch(
            f"{a.url}/documents/{first}", headers=user, json={"title": "Edited by hand"}, timeout=30
        )
        assert r.status_code == 200, r.text
        preview = download(a.url, user, f"/documents/{first}/pages/1/preview")

        # X: deleted while the backup ran (its file is gone, its row still in the dump).
        gone = upload(a.url, user, FILES[1], "deleted-during-backup.pdf")
        wait_terminal(a.url, user, gone["id"])
        asyncio.run(operator(a.data, lambda js: delete_original(js, object_name_of(a.data, gone["id"]))))

        # The text worker stops: what is uploaded from now on is unfinished at the dump.
        worker = extract_process(a)
        worker.send_signal(signal.SIGSTOP)
        try:
            # Y: unfinished at the dump, and its pipeline event no longer in the stream.
            stalled = upload(a.url, user, FILES[0], "unfinished-at-dump.pdf")
            asyncio.run(operator(a.data, lambda js: drop_uploaded_event(js, stalled["id"])))
            before = all_documents(a.url, user)
            categories_before = httpx.get(f"{a.url}/categories", headers=user, timeout=30).json()

            # Uploads keep coming while the backup runs.
            in_flight: list[dict[str, Any]] = []
            stop = threading.Event()

            def keep_uploading() -> None:
                while not stop.is_set() and len(in_flight) < 12:
                    n = len(in_flight)
                    in_flight.append(upload(a.url, user, FILES[n % 2], f"flight-{n}.pdf"))

            uploader = threading.Thread(target=keep_uploading)
            uploader.start()
            try:
                res = atrium("backup", str(tar), "--data", str(a.data), data=a.data, timeout=600)
            finally:
                stop.set()
                uploader.join(120)
        finally:
            worker.send_signal(signal.SIGCONT)
        assert res.returncode == 0, res.stderr
        for shown in (
            "PostgreSQL database atrium",
            "JetStream OBJ_documents",
            "JetStream KV_settings",
            "JetStream OBJ_avatars",
            "This backup holds the stack's secrets",
        ):
            assert shown in res.stderr, res.stderr
        assert in_flight, "no upload was in flight during the backup"
    finally:
        a.stop()

    # A restore refuses a non-empty directory, and a damaged file.
    b = Up(tmp_path / "b", free_port())
    b.data.mkdir()
    (b.data / "something").write_text("mine")
    res = atrium("restore", str(tar), "--data", str(b.data), data=b.data)
    assert res.returncode == 1 and "is not empty" in res.stderr, res.stderr
    (b.data / "something").unlink()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar.read_bytes()[: tar.stat().st_size * 2 // 3])
    res = atrium("restore", str(cut), "--data", str(b.data), data=b.data, timeout=300)
    assert res.returncode == 1 and "restore failed" in res.stderr, res.stderr
    assert not any(b.data.glob("pg")), "a failed restore left a stack behind"

    res = atrium("restore", str(tar), "--data", str(b.data), data=b.data, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "postgres/atrium" in res.stderr and "jetstream/OBJ_documents" in res.stderr, res.stderr
    b.start()
    try:
        user = login(b.url, email)  # passwords survive: the auth schema and the same platform secret
        admin = login(b.url, admin_email)
        settings = httpx.get(f"{b.url}/apps/documents/settings", headers=admin, timeout=30).json()
        assert (settings["max_upload_mb"], settings["task_retention_days"]) == (33, 77), settings
        assert download(b.url, user, "/profile/avatar") == avatar_stored
        categories = httpx.get(f"{b.url}/categories", headers=user, timeout=30).json()
        assert categories == categories_before

        # X is removed once the restored stack reconciled its database with the files.
        deadline = time.monotonic() + DEADLINE_S
        while document(b.url, user, gone["id"]).status_code != 404:
            assert time.monotonic() < deadline, "a document whose file is gone is still listed"
            time.sleep(0.5)

        for d, path in zip(docs, FILES, strict=True):
            restored = document(b.url, user, d["id"]).json()
            was = before[d["id"]]
            for key in ("status", "title", "sha256", "size", "categories", "run_id", "page_count"):
                assert restored[key] == was[key], (key, restored[key], was[key])
            assert restored["pages"], "the pages' text is gone"
            assert download(b.url, user, f"/documents/{d['id']}/file") == path.read_bytes()
        assert download(b.url, user, f"/documents/{first}/pages/1/preview") == preview

        # Y, unfinished at the dump with no event left, runs again; so does everything uploaded meanwhile.
        resumed = wait_terminal(b.url, user, stalled["id"])
        assert resumed["status"] == "ready" and resumed["run_id"] != before[stalled["id"]]["run_id"]
        restored_ids = set(all_documents(b.url, user))
        assert restored_ids >= set(before) - {gone["id"]}
        for doc_id in restored_ids - set(before):
            body = wait_terminal(b.url, user, doc_id)
            assert body["status"] == "ready", body
            n = int(body["filename"].removeprefix("flight-").removesuffix(".pdf"))
            assert download(b.url, user, f"/documents/{doc_id}/file") == FILES[n % 2].read_bytes()

        fresh = upload(b.url, user, FILES[2], "after-restore.pdf")
        assert wait_terminal(b.url, user, fresh["id"])["status"] == "ready"
    finally:
        b.stop()


def test_encrypted_backup_needs_its_passphrase(tmp_path: Path) -> None:
    """A cold backup (no stack running: the command starts the servers itself), encrypted."""
    data = tmp_path / "cold"
    res = atrium("migrate", "--data", str(data), data=data, timeout=300)
    assert res.returncode == 0, res.stderr
    tar = tmp_path / "cold.tar.enc"
    env = {"ATRIUM_BACKUP_PASSPHRASE": "correct horse battery staple"}
    res = atrium("backup", str(tar), "--encrypt", "--data", str(data), data=data, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert b"postgres/atrium" not in tar.read_bytes()  # nothing readable without the passphrase
    wrong = atrium(
        "restore", str(tar), "--data", str(tmp_path / "w"), data=data,
        env={"ATRIUM_BACKUP_PASSPHRASE": "wrong"}, timeout=300,
    )  # fmt: skip
    assert wrong.returncode == 1 and "passphrase is wrong" in wrong.stderr, wrong.stderr
    res = atrium("restore", str(tar), "--data", str(tmp_path / "r"), data=data, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "r" / "secrets" / "db.json").read_bytes() == (
        data / "secrets" / "db.json"
    ).read_bytes()


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    res = atrium("restore", str(junk), "--data", str(tmp_path / "x"), data=tmp_path)
    assert res.returncode == 1 and "not an Atrium backup" in res.stderr, res.stderr
