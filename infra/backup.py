"""Backup and restore of a whole stack: `atrium backup FILE --data DIR`, `atrium restore FILE --data DIR`.

A backup is one tar file, written and read as a stream (nothing is held whole in memory; at most one part
of `PART_BYTES` is):

    atrium-backup.json            format, version, id, time, where it came from
    files/secrets/…, files/keys/… the stack's secrets and token signing keys (SHA-256 in each member's PAX header)
    postgres/atrium/              `pg_dump --format=custom` of the database (every service's schema)
    jetstream/<stream>/           every JetStream stream of the account — the event streams, the KV buckets
                                  (`KV_<bucket>`) and the object stores (`OBJ_<bucket>`) — as the server's own
                                  snapshot: messages, sequence numbers and consumer positions
    manifest.json                 every item with its size and SHA-256, the timings

A streamed item is `meta.json`, `part-000001`, … (each part's SHA-256 in its PAX header) and `end.json`
(size and SHA-256 of the whole item), so a restore checks every part before it uses it.

Consistency. The database is dumped first, in one snapshot (pg_dump's transaction): the restored stack is
the database as of the moment the dump began (`database_at`). The streams are snapshotted after it, one
after the other. An upload stores its file before its row is written, so every document in the dump has its
original in the backup. What changed after `database_at` is only partly in the backup: a file uploaded
later without its row yet (carried along, never shown), a document deleted later (its row is in the dump,
its files may not be), pipeline events of documents processed later. `atrium restore` therefore publishes
`events.ops.restored` (contracts/ops.py); when the restored stack starts, the documents service removes
the documents whose original is missing and runs every document that was unfinished at `database_at`
again. Settings and sessions (KV) are each as of their own snapshot, a few seconds after the dump.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

FORMAT = "atrium-backup"
VERSION = 1
PART_BYTES = 8 * 1024 * 1024
SNAPSHOT_CHUNK = 256 * 1024
RESTORE_CHUNK = 256 * 1024
DATABASE = "atrium"
HEADER = "atrium-backup.json"
MANIFEST = "manifest.json"
# The SHA-256 of each member, as an extended attribute (`tar --xattrs` keeps it; plain tar ignores it quietly).
PAX_SHA256 = "SCHILY.xattr.user.atrium.sha256"
# What a data directory holds besides the servers' own state: secrets (platform secret, NATS and
# database passwords) and the token signing keys. Logs, mail drops and the web build are not backed up.
FILE_DIRS = ("secrets", "keys")
SKIP_FILES = {".pg_initpw"}
# What `restore --force` may delete in a data directory (nothing else in it is touched).
STACK_ENTRIES = ("nats", "pg", "secrets", "keys", "mail", "pg.log", "stack.json", "no-web")

Say = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore problem, with a message that says what to do."""


def say_stderr(msg: str) -> None:
    for line in msg.splitlines():
        print(f"atrium: {line}", file=sys.stderr, flush=True)


def mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# ---- writing ------------------------------------------------------------------------------------------
class TarOut:
    """A tar stream (`w|`: never seeks, so FILE may be a pipe) of named members."""

    def __init__(self, out: BinaryIO):
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.bytes = 0

    def add(self, name: str, data: bytes, *, mode: int = 0o600) -> str:
        digest = hashlib.sha256(data).hexdigest()
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        info.pax_headers = {PAX_SHA256: digest}
        self.tar.addfile(info, io.BytesIO(data))
        self.bytes += len(data)
        return digest

    def add_json(self, name: str, value: Any) -> str:
        return self.add(name, json.dumps(value, indent=2, default=str).encode())

    def close(self) -> None:
        self.tar.close()


@dataclass
class Item:
    """One streamed thing in the backup (the database, a stream): parts of at most PART_BYTES."""

    out: TarOut
    name: str
    kind: str
    meta: dict[str, Any]
    size: int = 0
    parts: int = 0
    hash: Any = field(default_factory=hashlib.sha256)
    pending: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.out.add_json(f"{self.name}/meta.json", {"kind": self.kind, **self.meta})

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        self.pending += data
        while len(self.pending) >= PART_BYTES:
            self._part(bytes(self.pending[:PART_BYTES]))
            del self.pending[:PART_BYTES]

    def _part(self, data: bytes) -> None:
        self.parts += 1
        self.out.add(f"{self.name}/part-{self.parts:06d}", data)

    def close(self) -> dict[str, Any]:
        if self.pending:
            self._part(bytes(self.pending))
            self.pending.clear()
        end = {"name": self.name, "kind": self.kind, "size": self.size, "sha256": self.hash.hexdigest()}
        end["parts"] = self.parts
        self.out.add_json(f"{self.name}/end.json", end)
        return end


class Ticker:
    """Progress of one long item: a line every few seconds."""

    def __init__(self, say: Say, what: str, every_s: float = 3.0):
        self.say, self.what, self.every_s = say, what, every_s
        self.started = self.last = time.monotonic()

    def tick(self, done: int, total: int | None = None) -> None:
        t = time.monotonic()
        if t - self.last >= self.every_s:
            self.last = t
            of = f" of about {mb(total)}" if total else ""
            self.say(f"  {self.what}: {mb(done)}{of} …")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


# ---- where the stack is --------------------------------------------------------------------------------
@dataclass
class Endpoints:
    nats_url: str
    nats_options: dict[str, Any]
    pg_admin_url: str  # postgresql://user:password@host:port/postgres
    running: bool


def _pg_port_of(data: Path) -> int:
    from .embedded import running_pg_port

    port = running_pg_port(data)
    if port is None:
        raise BackupError(f"The PostgreSQL of the stack of {data} is not running; see {data / 'pg.log'}.")
    return port


def _embedded_admin_url(data: Path, port: int) -> str:
    password = (data / "secrets" / "pg_superuser").read_text().strip()
    return f"postgresql://atrium_admin:{quote(password, safe='')}@127.0.0.1:{port}/postgres"


@contextlib.contextmanager
def stack_endpoints(data: Path, say: Say) -> Iterator[Endpoints]:
    """The running stack of `data`; without one, its embedded servers started for the backup (and
    stopped after it), holding the data directory's lock so `atrium up` waits for it."""
    from .devstack import DevStack, read_stack_info
    from .embedded import EmbeddedNats, EmbeddedPostgres

    info = read_stack_info(data)
    external_pg = os.environ.get("DATABASE_URL")
    external_nats = os.environ.get("NATS_URL")
    if info:
        url = str(info["nats_url"])
        admin_url = external_pg or _embedded_admin_url(data, _pg_port_of(data))
        say(f"backing up the running stack of {data} ({info.get('url', '')})")
        yield Endpoints(url, operator_login(data, own_stack=not external_nats), admin_url, running=True)
        return
    if not (data / "secrets").is_dir():
        raise BackupError(f"{data} is not an Atrium data directory (no secrets/); pass --data.")
    say(f"no stack is running for {data}: starting its servers for the backup")
    stack = DevStack(data_dir=data, http_port=0)
    stack.acquire_lock()
    nats: EmbeddedNats | None = None
    pg: EmbeddedPostgres | None = None
    try:
        if not external_nats:
            nats = EmbeddedNats(data).start()
        if not external_pg:
            pg = EmbeddedPostgres(data).start()
        url = external_nats or (nats.url if nats else "")
        login = operator_login(data, own_stack=not external_nats)
        yield Endpoints(url, login, external_pg or (pg.admin_url if pg else ""), running=False)
    finally:
        if pg:
            pg.stop()
        if nats:
            nats.stop()
        if stack.lock_fd is not None:
            os.close(stack.lock_fd)


def operator_login(data: Path, *, own_stack: bool = True) -> dict[str, Any]:
    """`nats.connect` options of the operator user: the embedded server's of `data` (its secrets file), or
    for an external NATS_URL what the environment says (ATRIUM_NATS_USER/PASSWORD, ATRIUM_NATS_SECRETS)."""
    from services.kit.config import nats_login

    from .nats.accounts import OPERATOR

    return nats_login(OPERATOR, data, stack_secrets_first=own_stack).connect_options()


def _libpq(url: str, database: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, the password in the environment (never in argv)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    args = ["--host", parts.hostname or "127.0.0.1", "--port", str(parts.port or 5432)]
    args += ["--username", parts.username or "postgres", "--dbname", database, "--no-password"]
    from urllib.parse import unquote

    return args, {**os.environ, "PGPASSWORD": unquote(parts.password or "")}


def _pg_tool(name: str) -> str:
    from .embedded import _pg_bin

    path = _pg_bin() / name
    return str(path) if path.exists() else (shutil.which(name) or name)


# ---- backup --------------------------------------------------------------------------------------------
async def _dump_postgres(out: TarOut, admin_url: str, say: Say) -> dict[str, Any]:
    args, env = _libpq(admin_url, DATABASE)
    started = now_iso()
    proc = await asyncio.create_subprocess_exec(
        _pg_tool("pg_dump"),
        "--format=custom",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    item = Item(out, f"postgres/{DATABASE}", "postgres", {"database": DATABASE, "dump_started_at": started})
    ticker = Ticker(say, "PostgreSQL")
    errors = asyncio.create_task(proc.stderr.read())
    while chunk := await proc.stdout.read(1024 * 1024):
        item.write(chunk)
        ticker.tick(item.size)
    code = await proc.wait()
    stderr = (await errors).decode(errors="replace").strip()
    if code != 0:
        raise BackupError(f"pg_dump failed (exit {code}): {stderr[-1500:]}")
    end = item.close()
    say(f"PostgreSQL database {DATABASE}: {mb(end['size'])} [{ticker.elapsed:.1f}s]")
    return {**end, "dump_started_at": started}


async def _api(nc: Any, subject: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    reply = await nc.request(subject, json.dumps(body or {}).encode(), timeout=timeout)
    data = json.loads(reply.data or b"{}")
    if isinstance(data, dict) and data.get("error"):
        err = data["error"]
        raise BackupError(f"{subject}: {err.get('description', err)} (NATS error {err.get('err_code', '')})")
    return data


async def stream_names(nc: Any) -> list[str]:
    names: list[str] = []
    while True:
        page = await _api(nc, "$JS.API.STREAM.NAMES", {"offset": len(names)})
        names += page.get("streams") or []
        if not page.get("streams") or len(names) >= int(page.get("total", 0)):
            return sorted(names)


async def _snapshot_stream(nc: Any, out: TarOut, name: str, say: Say) -> dict[str, Any]:
    """The server's snapshot of one stream (messages and consumers), acked chunk by chunk (flow control)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        request = {"deliver_subject": inbox, "no_consumers": False, "chunk_size": SNAPSHOT_CHUNK}
        meta = await _api(nc, f"$JS.API.STREAM.SNAPSHOT.{name}", request)
        state = meta.get("state") or {}
        item = Item(out, f"jetstream/{name}", "stream", {"config": meta["config"], "state": state})
        ticker = Ticker(say, name)
        while True:
            msg = await sub.next_msg(timeout=60)
            if not msg.data:
                status = (msg.headers or {}).get("Status", "")
                if status and status not in ("204", "200"):
                    desc = (msg.headers or {}).get("Description", "")
                    raise BackupError(
                        f"the snapshot of stream {name} was cut off by the server: {status} {desc}"
                    )
                break
            item.write(msg.data)
            if msg.reply:
                await msg.respond(b"")
            ticker.tick(item.size, int(state.get("bytes", 0)) or None)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    end = item.close()
    messages = int(state.get("messages", 0))
    say(f"JetStream {name}: {messages} messages, {mb(end['size'])} [{ticker.elapsed:.1f}s]")
    return {**end, "messages": messages, "consumers": int(state.get("consumer_count", 0))}


def _secret_files(data: Path) -> Iterator[tuple[str, Path]]:
    for top in FILE_DIRS:
        root = data / top
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.name not in SKIP_FILES:
                yield path.relative_to(data).as_posix(), path


async def backup(data: Path, out: BinaryIO, *, say: Say = say_stderr) -> dict[str, Any]:
    """Write a backup of the stack of `data` to `out`; return its manifest."""
    import nats

    from services.kit.config import nats_servers

    t0 = time.monotonic()
    backup_id = str(uuid.uuid4())
    created = now_iso()
    with stack_endpoints(data, say) as where:
        tar = TarOut(out)
        header = {"format": FORMAT, "version": VERSION, "id": backup_id, "created_at": created}
        header |= {"source": {"data_dir": str(data.resolve()), "running": where.running}}
        tar.add_json(HEADER, header)
        files: list[dict[str, Any]] = []
        for name, path in _secret_files(data):
            digest = tar.add(f"files/{name}", path.read_bytes(), mode=path.stat().st_mode & 0o777)
            files.append({"name": name, "size": path.stat().st_size, "sha256": digest})
        say(f"secrets and keys: {len(files)} files ({', '.join(FILE_DIRS)})")
        if os.environ.get("ATRIUM_SECRET") and not (data / "secrets" / "platform").exists():
            say(
                "WARNING: the platform secret comes from ATRIUM_SECRET and is not in the backup; keep it "
                "with the backup: API keys in the settings cannot be read without it."
            )
        database = await _dump_postgres(tar, where.pg_admin_url, say)
        nc = await nats.connect(
            nats_servers(where.nats_url), connect_timeout=5, max_reconnect_attempts=3, **where.nats_options
        )
        try:
            streams = [await _snapshot_stream(nc, tar, name, say) for name in await stream_names(nc)]
        finally:
            await nc.close()
        manifest = {
            **header,
            "finished_at": now_iso(),
            "database_at": database["dump_started_at"],
            "files": files,
            "items": [database, *streams],
        }
        tar.add_json(MANIFEST, manifest)
        tar.close()
    total = sum(int(f["size"]) for f in files) + sum(int(i["size"]) for i in (database, *streams))
    say(f"backup {backup_id}: {mb(total)} of data in {time.monotonic() - t0:.1f}s")
    return manifest


# ---- restore -------------------------------------------------------------------------------------------
def prepare_target(data: Path, force: bool) -> None:
    """An empty (or new) directory; a non-empty one only with --force, and only if it is a stack's."""
    if data.exists() and not data.is_dir():
        raise BackupError(f"{data} is a file, not a directory.")
    entries = [p for p in data.iterdir() if p.name != "atrium.lock"] if data.exists() else []
    if not entries:
        return
    if not force:
        raise BackupError(
            f"{data} is not empty: restore rebuilds a stack into a new, empty data directory. "
            "Choose another --data, or add --force to replace the stack in it."
        )
    if not any((data / marker).exists() for marker in ("secrets", "pg", "nats")):
        raise BackupError(f"{data} does not look like an Atrium data directory; refusing to delete it.")
    for name in STACK_ENTRIES:
        path = data / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def open_backup(src: BinaryIO, passphrase: Callable[[], str]) -> BinaryIO:
    """The backup's tar stream: `src` itself, or decrypted when it starts with the encryption magic."""
    from .backup_crypto import MAGIC, DecryptingReader

    head = _peek(src, len(MAGIC))
    if head != MAGIC:
        return _Prefixed(head, src)  # type: ignore[return-value]
    return DecryptingReader(src, passphrase())  # type: ignore[return-value]


def _peek(src: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = src.read(n - len(data))
        if not more:
            break
        data += more
    return data


class _Prefixed:
    """A read-only stream that yields `head` before the rest of `src` (for a pipe, which cannot seek back)."""

    def __init__(self, head: bytes, src: BinaryIO):
        self.head, self.src = head, src

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.src.read(n)
        if n < 0:
            out, self.head = self.head + self.src.read(), b""
            return out
        out, self.head = self.head[:n], self.head[n:]
        return out if len(out) == n else out + self.src.read(n - len(out))


@dataclass
class Reader:
    """Members of the backup in order, each part checked against the SHA-256 in its PAX header."""

    tar: tarfile.TarFile

    def __iter__(self) -> Iterator[tuple[str, bytes, tarfile.TarInfo]]:
        for member in self.tar:
            if not member.isfile():
                raise BackupError(f"unexpected entry {member.name!r} in the backup")
            f = self.tar.extractfile(member)
            assert f is not None
            data = f.read()
            expected = member.pax_headers.get(PAX_SHA256)
            if expected is None or hashlib.sha256(data).hexdigest() != expected:
                raise BackupError(f"the backup is damaged: {member.name} does not match its checksum")
            yield member.name, data, member


class PgSink:
    """`pg_restore` into the restored stack's database, fed part by part through its stdin."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.proc: asyncio.subprocess.Process | None = None
        self.errors: asyncio.Task[bytes] | None = None

    async def begin(self, meta: dict[str, Any]) -> None:
        base = self.admin_url.rsplit("/", 1)[0]
        args, env = _libpq(f"{base}/{DATABASE}", DATABASE)
        self.proc = await asyncio.create_subprocess_exec(
            _pg_tool("pg_restore"),
            *args,
            "--clean",  # the empty schemas `provision` made are replaced by the dumped ones
            "--if-exists",
            "--exit-on-error",
            "--single-transaction",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert self.proc.stderr is not None
        self.errors = asyncio.create_task(self.proc.stderr.read())

    async def feed(self, data: bytes) -> None:
        assert self.proc and self.proc.stdin
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await self.end({})

    async def end(self, _end: dict[str, Any]) -> None:
        assert self.proc and self.proc.stdin and self.errors
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.close()
            await self.proc.stdin.wait_closed()
        code = await self.proc.wait()
        if code != 0:
            stderr = (await self.errors).decode(errors="replace").strip()
            raise BackupError(f"pg_restore failed (exit {code}): {stderr[-1500:]}")


class StreamSink:
    """A stream restored by the server from its snapshot, sent in RESTORE_CHUNK requests."""

    def __init__(self, nc: Any, name: str):
        self.nc, self.name = nc, name
        self.deliver = ""

    async def begin(self, meta: dict[str, Any]) -> None:
        from services.kit.jetstream import js_replicas

        config = {**meta["config"], "num_replicas": js_replicas()}
        reply = await _api(
            self.nc, f"$JS.API.STREAM.RESTORE.{self.name}", {"config": config, "state": meta.get("state", {})}
        )
        self.deliver = reply["deliver_subject"]

    async def _send(self, chunk: bytes, timeout: float) -> Any:
        reply = await self.nc.request(self.deliver, chunk, timeout=timeout)
        status = (reply.headers or {}).get("Status", "")
        if status and not status.startswith("2"):
            raise BackupError(
                f"restoring stream {self.name}: {status} {(reply.headers or {}).get('Description')}"
            )
        if reply.data:
            body = json.loads(reply.data)
            if isinstance(body, dict) and body.get("error"):
                raise BackupError(f"restoring stream {self.name}: {body['error'].get('description')}")
            return body
        return None

    async def feed(self, data: bytes) -> None:
        for i in range(0, len(data), RESTORE_CHUNK):
            await self._send(data[i : i + RESTORE_CHUNK], timeout=60)

    async def end(self, _end: dict[str, Any]) -> None:
        await self._send(b"", timeout=3600)  # the server now rebuilds the stream; large ones take a while


@dataclass
class Restore:
    data: Path
    say: Say
    header: dict[str, Any] = field(default_factory=dict)
    nats: Any = None
    pg: Any = None
    nc: Any = None
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def start_postgres(self) -> str:
        from .embedded import EmbeddedPostgres, provision

        if self.pg is None:
            t = time.monotonic()
            self.pg = EmbeddedPostgres(self.data).start()
            await provision(self.pg.admin_url, self.data)
            self.say(f"PostgreSQL started and provisioned [{time.monotonic() - t:.1f}s]")
        return str(self.pg.admin_url)

    async def connect_nats(self) -> Any:
        import nats

        from .embedded import EmbeddedNats

        if self.nc is None:
            self.nats = EmbeddedNats(self.data).start()
            self.nc = await nats.connect(self.nats.url, connect_timeout=5, **operator_login(self.data))
        return self.nc

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
        if self.pg is not None:
            self.pg.stop()
        if self.nats is not None:
            self.nats.stop()

    async def run(self, src: BinaryIO) -> dict[str, Any]:
        try:
            return await self._run(src)
        except tarfile.TarError as exc:
            if not self.header:
                raise BackupError("This is not an Atrium backup (not a tar file).") from None
            raise BackupError(f"the backup is damaged or cut off ({exc}).") from None

    async def _run(self, src: BinaryIO) -> dict[str, Any]:
        tar = tarfile.open(fileobj=src, mode="r|")  # noqa: SIM115
        members = iter(Reader(tar))
        name, data, _ = next(members, ("", b"", None))
        if name != HEADER:
            raise BackupError("This is not an Atrium backup (it does not start with atrium-backup.json).")
        self.header = json.loads(data)
        if self.header.get("format") != FORMAT or int(self.header.get("version", 0)) > VERSION:
            raise BackupError(
                f"This backup has format {self.header.get('format')} version {self.header.get('version')}; "
                f"this Atrium reads {FORMAT} up to version {VERSION}."
            )
        self.say(f"backup {self.header['id']} of {self.header['created_at']}")
        sink: PgSink | StreamSink | None = None
        item: dict[str, Any] = {}
        files = 0
        manifest: dict[str, Any] | None = None
        ticker = Ticker(self.say, "")
        for name, data, member in members:
            if name.startswith("files/"):
                self._write_file(name.removeprefix("files/"), data, member.mode)
                files += 1
            elif name.endswith("/meta.json"):
                item = {"name": name.removesuffix("/meta.json"), "size": 0, "hash": hashlib.sha256()}
                meta = json.loads(data)
                if meta["kind"] == "postgres":
                    if files:
                        self.say(f"secrets and keys: {files} files")
                    sink = PgSink(await self.start_postgres())
                else:
                    sink = StreamSink(await self.connect_nats(), item["name"].removeprefix("jetstream/"))
                await sink.begin(meta)
                ticker = Ticker(self.say, item["name"])
            elif name.endswith("/end.json"):
                end = json.loads(data)
                if sink is None or end["name"] != item.get("name"):
                    raise BackupError(f"the backup is damaged: {name} without its beginning")
                if end["size"] != item["size"] or end["sha256"] != item["hash"].hexdigest():
                    raise BackupError(f"the backup is damaged: {end['name']} is incomplete")
                await sink.end(end)
                self.seen[end["name"]] = end
                self.say(f"{end['name']}: {mb(end['size'])} restored [{ticker.elapsed:.1f}s]")
                sink, item = None, {}
            elif name.startswith(item.get("name", "\0") + "/part-") and sink is not None:
                item["size"] += len(data)
                item["hash"].update(data)
                await sink.feed(data)
                ticker.tick(item["size"])
            elif name == MANIFEST:
                manifest = json.loads(data)
            else:
                raise BackupError(f"unexpected entry {name!r} in the backup")
        if manifest is None:
            raise BackupError("the backup is incomplete: it ends before its manifest (was it cut off?)")
        missing = [i["name"] for i in manifest["items"] if i["name"] not in self.seen]
        if missing or sink is not None:
            raise BackupError(f"the backup is incomplete: missing {missing or [item.get('name')]}")
        await self._announce(manifest)
        return manifest

    def _write_file(self, rel: str, data: bytes, mode: int) -> None:
        path = Path(rel)
        if path.is_absolute() or ".." in path.parts or path.parts[0] not in FILE_DIRS:
            raise BackupError(f"the backup names a file outside the data directory: {rel!r}")
        from .secret_files import write_secret

        target = self.data / path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_secret(target, "")  # created 0600 before the content is in it
        target.write_bytes(data)
        target.chmod(mode & 0o700 or 0o600)

    async def _announce(self, manifest: dict[str, Any]) -> None:
        """`events.ops.restored`, for the services to reconcile the database with the files when they start."""
        from contracts import Header
        from contracts.ops import STACK_RESTORED, StackRestored
        from contracts.streams import OPS_STREAM
        from services.kit.jetstream import ensure_streams

        nc = await self.connect_nats()
        js = nc.jetstream()
        await ensure_streams(js, [OPS_STREAM])
        event = StackRestored(
            backup_id=manifest["id"],
            backup_created_at=manifest["created_at"],
            database_at=manifest["database_at"],
            restored_at=datetime.now(UTC),
        )
        await js.publish(
            STACK_RESTORED.subject,
            event.model_dump_json().encode(),
            headers={Header.MSG_ID: f"restored:{manifest['id']}"},
        )


async def restore(src: BinaryIO, data: Path, *, say: Say = say_stderr) -> dict[str, Any]:
    """Rebuild the stack of `data` (empty, or prepared by `prepare_target`) from the backup in `src`."""
    from .devstack import DevStack
    from .embedded import StackError

    if os.environ.get("NATS_URL") or os.environ.get("DATABASE_URL"):
        raise BackupError(
            "restore rebuilds the embedded NATS and PostgreSQL of --data; unset NATS_URL and DATABASE_URL "
            "(for external servers use pg_restore and `nats stream restore`, see README)."
        )
    t0 = time.monotonic()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    stack = DevStack(data_dir=data, http_port=0)
    try:
        stack.acquire_lock()
    except StackError as exc:
        raise BackupError(str(exc)) from None
    job = Restore(data, say)
    try:
        manifest = await job.run(src)
    except BaseException:
        await job.close()
        for name in STACK_ENTRIES:  # nothing half-restored is left behind to be started by mistake
            path = data / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        raise
    else:
        await job.close()
    finally:
        if stack.lock_fd is not None:
            os.close(stack.lock_fd)
    say(f"restored into {data} in {time.monotonic() - t0:.1f}s; start it with ./atrium up --data {data}")
    return manifest


# ---- the commands --------------------------------------------------------------------------------------
SECRETS_WARNING = (
    "!! This backup holds the stack's secrets: the platform secret (it decrypts API keys), the database and\n"
    "!! NATS passwords and the token signing keys. Anyone who has the file can read every document and sign\n"
    "!! in as any user. Store it like a password (access-controlled, off this machine), or make it with\n"
    "!! --encrypt (a passphrase)."
)


def passphrase_from_env_or_prompt(confirm: bool) -> str:
    value = os.environ.get("ATRIUM_BACKUP_PASSPHRASE")
    if value:
        return value
    import typer

    if not sys.stdin.isatty():
        raise BackupError("An encrypted backup needs a passphrase: set ATRIUM_BACKUP_PASSPHRASE.")
    return str(typer.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm))


def backup_command(file: str, data: Path, encrypt: bool) -> None:
    """`atrium backup FILE`: written to FILE.partial, renamed when complete (a cut-off file never looks done)."""
    from .backup_crypto import EncryptingWriter

    passphrase = passphrase_from_env_or_prompt(confirm=True) if encrypt else ""
    target = None if file == "-" else Path(file)
    partial = target.with_name(target.name + ".partial") if target else None
    say_stderr(SECRETS_WARNING if not encrypt else "the backup is encrypted with your passphrase")
    sink: Any
    if partial is not None:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        sink = os.fdopen(fd, "wb")
    else:
        sink = sys.stdout.buffer
    try:
        out: Any = EncryptingWriter(sink, passphrase) if encrypt else sink
        asyncio.run(backup(data, out))
        if encrypt:
            out.close()
        sink.flush()
        if partial is not None and target is not None:
            os.fsync(sink.fileno())
            sink.close()
            partial.replace(target)
            say_stderr(f"wrote {target} ({mb(target.stat().st_size)})")
    except BaseException:
        if partial is not None:
            sink.close()
            partial.unlink(missing_ok=True)
        raise
    if not encrypt:
        say_stderr(SECRETS_WARNING)


def restore_command(file: str, data: Path, force: bool) -> None:
    prepare_target(data, force)
    src: Any = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    try:
        stream = open_backup(src, lambda: passphrase_from_env_or_prompt(confirm=False))
        asyncio.run(restore(stream, data))  # type: ignore[arg-type]
    finally:
        if src is not sys.stdin.buffer:
            src.close()
