"""NATS users and subject permissions for an Atrium stack, derived from the contracts registry.

One user per catalog process, plus `gateway` and `operator` (the CLI and the test harness), all in
the server's global account (so JetStream data of an existing data directory stays where it is).
What a process may do follows from the contracts: it serves (subscribes to) exactly the Rpcs whose
`service` it is and nobody else may; it requests the Rpcs it calls; it publishes the events it
owns; it reads its replies only under its own inbox prefix (`_INBOX.<user>.>`), and answers
requests through `allow_responses` instead of a right to publish into anyone's inbox. The few
facts the registry does not hold (who publishes a shared stream's events, who consumes what,
which buckets a process uses) are in `_needs()` below, written with contract descriptors.

`write_config(data_dir)` keeps random passwords in `<data>/secrets/nats.json` (0600) and writes
`<data>/nats/users.conf`, an `authorization` block with bcrypt hashes only, which the embedded
server includes and compose mounts.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import REGISTRY
from contracts.auth import (
    AUTH_STATE_BUCKET,
    AUTH_STATE_PUSH,
    JWKS,
    USER_CHANGED,
    USER_DELETED,
    USER_REGISTERED,
)
from contracts.base import Event, Progress, Rpc
from contracts.documents import (
    DOCUMENT_ANALYZED,
    DOCUMENT_EXTRACTED,
    DOCUMENT_FAILED,
    DOCUMENT_OCR_PROGRESS,
    DOCUMENT_PROCESSING,
    DOCUMENT_PROGRESS,
    DOCUMENT_UPLOADED,
    OBJECT_BUCKET,
    OCR_ENGINES_BUCKET,
    SETTINGS_BUCKET,
    SETTINGS_CHANGED,
    SUPERSEDED_RUNS_BUCKET,
)
from contracts.identity import SSO_GROUPS_CLAIMED
from contracts.ops import STACK_RESTORED
from contracts.permissions import (
    ACCESS_CHECK,
    APP_ANNOUNCED,
    GROUP_DIRECTORY,
    MY_GROUPS,
    PERMISSIONS_CHANGED,
)
from contracts.profile import AVATAR_BUCKET
from gateway.settings import NATS_USER as GATEWAY
from infra import catalog
from infra.secret_files import write_secret
from services.kit.config import NATS_SECRETS_FILE, nats_inbox_prefix

OPERATOR = "operator"
AUTH_CONF = "users.conf"
HASH_CACHE_FILE = "nats.hashes.json"
# Workers without an HTTP API: their Rpcs (other than health) are for services, never the gateway.
INTERNAL_SERVICES = ("extract",)
# The text worker's own run markers (services/extraction/text/app.py RUNS_BUCKET; a unit test keeps them
# equal without importing the PDF stack here).
EXTRACT_RUNS_BUCKET = "extract_runs"
# The passwords are random 192-bit tokens, which no bcrypt cost makes more or less guessable; the server
# checks the hash on every connect and reconnect, in the client's read loop. At cost 11 a busy 2-core host
# (the compose stack starting) took 2-7 s per connect, long enough for the server's first RTT PING to
# overtake the handshake's PONG, which nats-py 2.16 mistakes for a finished handshake: the client then
# never counts as connected (nats-server#1174, nats.py#93). Cost 6 checks in milliseconds.
BCRYPT_COST = 6


def rpcs_of(service: str, *, health: bool = False) -> tuple[Rpc[Any, Any], ...]:
    return tuple(
        r
        for r in REGISTRY.rpcs.values()
        if r.service == service and (health or r.subject != f"{service}.health")
    )


@dataclass(frozen=True)
class Needs:
    """What a process does on the bus beyond serving its own Rpcs."""

    calls: tuple[Rpc[Any, Any], ...] = ()
    publishes: tuple[Event[Any], ...] = ()
    progress: tuple[Progress[Any], ...] = ()  # core-NATS progress it publishes
    listens: tuple[Event[Any], ...] = ()  # plain core-NATS subscriptions to an event subject
    consumes: tuple[Event[Any], ...] = ()  # durable JetStream consumers
    purges: tuple[str, ...] = ()  # streams it trims
    kv_write: tuple[str, ...] = ()
    kv_read: tuple[str, ...] = ()
    objects_write: tuple[str, ...] = ()
    objects_read: tuple[str, ...] = ()


def _needs() -> dict[str, Needs]:
    return {
        "auth": Needs(
            publishes=(USER_REGISTERED, USER_CHANGED, USER_DELETED, SSO_GROUPS_CLAIMED),
            progress=(AUTH_STATE_PUSH,),  # revocations the bucket refused, to every verifier
            kv_write=(AUTH_STATE_BUCKET,),
        ),
        "profile": Needs(consumes=(USER_REGISTERED, USER_DELETED), objects_write=(AVATAR_BUCKET,)),
        "permissions": Needs(
            publishes=(PERMISSIONS_CHANGED,),
            consumes=(APP_ANNOUNCED, USER_REGISTERED, USER_DELETED, SSO_GROUPS_CLAIMED),
            purges=(APP_ANNOUNCED.stream,),
        ),
        # Sharing: the caller's groups and every group's name (the permissions service), the accounts it
        # names (a directory projected from auth's events), deleted groups' shares (permissions' events).
        "docs": Needs(
            calls=(ACCESS_CHECK, MY_GROUPS, GROUP_DIRECTORY, *rpcs_of("extract")),
            publishes=(DOCUMENT_UPLOADED, APP_ANNOUNCED),
            progress=(DOCUMENT_PROGRESS,),
            listens=(PERMISSIONS_CHANGED,),
            consumes=(
                DOCUMENT_PROCESSING,
                DOCUMENT_OCR_PROGRESS,
                DOCUMENT_EXTRACTED,
                DOCUMENT_ANALYZED,
                DOCUMENT_FAILED,
                USER_REGISTERED,
                USER_CHANGED,
                STACK_RESTORED,
                USER_DELETED,
                PERMISSIONS_CHANGED,
                SETTINGS_CHANGED,
            ),
            kv_read=(SETTINGS_BUCKET,),
            kv_write=(SUPERSEDED_RUNS_BUCKET,),
            objects_write=(OBJECT_BUCKET,),
        ),
        # The preview Rpc re-checks the reader's app access itself (AppAccessGuard), as docs does. It reads
        # the Documents settings (OCR) and announces what its OCR can read.
        "extract": Needs(
            calls=(ACCESS_CHECK,),
            listens=(PERMISSIONS_CHANGED,),
            publishes=(DOCUMENT_PROCESSING, DOCUMENT_OCR_PROGRESS, DOCUMENT_EXTRACTED, DOCUMENT_FAILED),
            progress=(DOCUMENT_PROGRESS,),
            consumes=(DOCUMENT_UPLOADED,),
            kv_write=(EXTRACT_RUNS_BUCKET, OCR_ENGINES_BUCKET),
            kv_read=(SETTINGS_BUCKET, SUPERSEDED_RUNS_BUCKET),
            objects_write=(OBJECT_BUCKET,),
        ),
        "ai": Needs(
            publishes=(DOCUMENT_PROCESSING, DOCUMENT_ANALYZED, DOCUMENT_FAILED, SETTINGS_CHANGED),
            progress=(DOCUMENT_PROGRESS,),
            consumes=(DOCUMENT_EXTRACTED,),
            kv_write=(SETTINGS_BUCKET,),
            kv_read=(OCR_ENGINES_BUCKET, SUPERSEDED_RUNS_BUCKET),
            objects_read=(OBJECT_BUCKET,),
        ),
    }


@dataclass
class Permissions:
    publish: set[str] = field(default_factory=set)
    subscribe: set[str] = field(default_factory=set)
    responds: bool = False  # may answer requests it received (allow_responses)

    def as_conf(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "publish": {"allow": sorted(self.publish)},
            "subscribe": {"allow": sorted(self.subscribe)},
        }
        if self.responds:
            out["allow_responses"] = True
        return out


# ---- JetStream API subjects ------------------------------------------------------------------------
# Only the API calls nats-py 2.16 makes for what the kit does, as a protocol trace of the suite showed:
# named consumer creation (no legacy DURABLE.CREATE), MSG.GET (our buckets are not created with
# allow_direct), no consumer deletion (ordered consumers expire on the server).
def _stream_ensure(stream: str, *, update: bool = True) -> set[str]:
    """Look up and create (kit `ensure_streams` also updates the domain streams at every start)."""
    return {f"$JS.API.STREAM.{op}.{stream}" for op in ("INFO", "CREATE", *(("UPDATE",) if update else ()))}


def _durable_consumers(stream: str) -> set[str]:
    """`Service.on_event`: named pull consumers, their fetches and acks."""
    return {
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.LIST.{stream}",  # the consumers' lag (the documents service's System status)
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
    }


def _ordered_reads(stream: str) -> set[str]:
    """KV watches and Object Store reads: ephemeral ordered push consumers with flow control."""
    return {
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.FC.{stream}.>",
    }


def _kv(bucket: str, write: bool) -> set[str]:
    stream = f"KV_{bucket}"
    # a writer keeps the bucket's byte limit at the storage budget's (kit/jetstream.py `keep_limit`)
    subjects = _stream_ensure(stream, update=write) | _ordered_reads(stream)
    return subjects | ({f"$KV.{bucket}.>"} if write else set())


def _objects(bucket: str, write: bool) -> set[str]:
    stream = f"OBJ_{bucket}"
    # nats-py finds the stream of a chunk subject by name lookup before each read
    subjects = _stream_ensure(stream, update=write) | _ordered_reads(stream) | {"$JS.API.STREAM.NAMES"}
    return subjects | ({f"$O.{bucket}.>", f"$JS.API.STREAM.PURGE.{stream}"} if write else set())


def _verifies_tokens(service: str) -> bool:
    """Any Rpc but health: a public one verifies a token when it comes with one (the preview Rpc)."""
    return bool(rpcs_of(service))


# ---- per process ------------------------------------------------------------------------------------
def service_permissions(service: str, needs: Needs) -> Permissions:
    p = Permissions(responds=True)
    p.subscribe |= {r.subject for r in rpcs_of(service, health=True)} | {f"{nats_inbox_prefix(service)}.>"}
    p.subscribe |= {e.subject for e in needs.listens}
    calls = list(needs.calls)
    if _verifies_tokens(service):
        calls.append(JWKS)
        p.publish |= _kv(AUTH_STATE_BUCKET, write=AUTH_STATE_BUCKET in needs.kv_write)
        p.subscribe.add(AUTH_STATE_PUSH.subject())
    p.publish |= {r.subject for r in calls}
    p.publish |= {e.subject for e in needs.publishes}
    p.publish |= {pr.wildcard() for pr in needs.progress}
    for stream in REGISTRY.streams:  # every service ensures the domain streams at start (kit/jetstream.py)
        p.publish |= _stream_ensure(stream)
    for e in needs.consumes:
        p.publish |= _durable_consumers(e.stream)
    p.publish |= {f"$JS.API.STREAM.PURGE.{s}" for s in needs.purges}
    for b in needs.kv_write:
        p.publish |= _kv(b, write=True)
    for b in needs.kv_read:
        p.publish |= _kv(b, write=False)
    for b in needs.objects_write:
        p.publish |= _objects(b, write=True)
    for b in needs.objects_read:
        p.publish |= _objects(b, write=False)
    return p


def gateway_permissions() -> Permissions:
    """Requests every Rpc a user or admin may make (not the internal workers'), follows progress
    and streams uploads and downloads through the documents Object Store. Serves nothing."""
    p = Permissions()
    p.publish |= {
        r.subject
        for r in REGISTRY.rpcs.values()
        if r.service not in INTERNAL_SERVICES or r.subject == f"{r.service}.health"
    }
    p.publish |= _objects(OBJECT_BUCKET, write=True)
    p.subscribe |= {pr.wildcard() for pr in REGISTRY.progress.values()} | {f"{nats_inbox_prefix(GATEWAY)}.>"}
    return p


def operator_permissions() -> Permissions:
    """The CLI (`atrium bus/admin/documents`) and the test harness: everything, like a database superuser."""
    return Permissions(publish={">"}, subscribe={">"}, responds=True)


def all_permissions() -> dict[str, Permissions]:
    needs = _needs()
    perms = {s.name: service_permissions(s.name, needs.get(s.name, Needs())) for s in catalog.SERVICES}
    perms[GATEWAY] = gateway_permissions()
    perms[OPERATOR] = operator_permissions()
    return perms


def users() -> tuple[str, ...]:
    return tuple(all_permissions())


# ---- credentials and the config file ---------------------------------------------------------------------
def hash_password(password: str) -> str:
    """A bcrypt hash, which nats-server checks a password against."""
    import bcrypt

    return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode())


def read_or_create_passwords(data_dir: Path, names: Iterable[str]) -> dict[str, str]:
    """`{user: password}` from `<data>/secrets/nats.json`, adding a random one for each new user."""
    path = data_dir / "secrets" / NATS_SECRETS_FILE
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [n for n in names if n not in stored]
    for n in missing:
        stored[n] = secrets.token_urlsafe(24)
    if missing or not path.exists():
        write_secret(path, json.dumps(stored))
    return stored


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid NATS config string


def render_authorization(perms: dict[str, Permissions], hashes: dict[str, str]) -> str:
    """The `authorization` block: users with bcrypt hashes and their permissions (no anonymous access)."""
    lines = [
        "# Generated by infra/nats/accounts.py from the contracts registry; do not edit.",
        "authorization {",
        "  users = [",
    ]
    for user, p in perms.items():
        conf = p.as_conf()
        lines.append(f"    {{user: {_quote(user)}, password: {_quote(hashes[user])}, permissions: {{")
        for direction in ("publish", "subscribe"):
            allowed = ", ".join(_quote(s) for s in conf[direction]["allow"])
            lines.append(f"      {direction}: {{allow: [{allowed}]}}")
        if p.responds:
            lines.append("      allow_responses: true")
        lines.append("    }}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def _hashes(data_dir: Path, passwords: dict[str, str]) -> dict[str, str]:
    """bcrypt hashes, cached beside the passwords (hashing all users costs about a second per start)."""
    path = data_dir / "secrets" / HASH_CACHE_FILE
    cache: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
    out: dict[str, str] = {}
    for user, password in passwords.items():
        fingerprint = hashlib.sha256(password.encode()).hexdigest()
        cached = cache.get(user)
        if not cached or cached[0] != fingerprint or not cached[1].startswith(f"$2b${BCRYPT_COST:02d}$"):
            cache[user] = [fingerprint, hash_password(password)]
        out[user] = cache[user][1]
    write_secret(path, json.dumps(cache))
    return out


def write_config(data_dir: Path) -> Path:
    """Write `<data>/nats/users.conf` for the current registry; passwords persist per data directory."""
    perms = all_permissions()
    passwords = read_or_create_passwords(data_dir, perms)
    hashes = _hashes(data_dir, {u: passwords[u] for u in perms})
    conf = data_dir / "nats" / AUTH_CONF
    conf.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_secret(conf, render_authorization(perms, hashes))
    return conf


@dataclass(frozen=True)
class Violation:
    user: str
    connection: str  # the client's connection name (`atrium-<service>`, …)
    kind: str  # Publish | Subscription
    subject: str


_VIOLATION = re.compile(
    r'"v[^":]*:[^":]*(?::(?P<conn>[^"]*))?" - "\$G/user:(?P<user>[^"]+)" - '
    r'(?P<kind>Publish|Subscription) Violation - Subject "(?P<subject>[^"]+)"'
)


def permission_violations(server_log: str) -> list[Violation]:
    """What nats-server refused, from its log: a process missing a permission shows up here."""
    return [
        Violation(m["user"], m["conn"] or "", m["kind"], m["subject"])
        for m in _VIOLATION.finditer(server_log)
    ]
