"""The generated NATS permissions cover the contracts: each Rpc served by exactly its service, each
event published only by who owns it, stream deletion by the operator alone; the config holds hashes only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from contracts import REGISTRY
from contracts.auth import USER_REGISTERED
from contracts.base import subject_matches
from infra import catalog
from infra.nats import accounts
from services.kit.config import ServiceSettings, nats_inbox_prefix


def allowed(patterns: set[str], subject: str) -> bool:
    return any(subject_matches(p, subject) for p in patterns)


@pytest.fixture(scope="module")
def perms() -> dict[str, accounts.Permissions]:
    return accounts.all_permissions()


def test_one_user_per_catalog_process_plus_gateway_and_operator(
    perms: dict[str, accounts.Permissions],
) -> None:
    assert set(perms) == {s.name for s in catalog.SERVICES} | {accounts.GATEWAY, accounts.OPERATOR}


def test_each_rpc_is_subscribable_by_exactly_its_service(perms: dict[str, accounts.Permissions]) -> None:
    for subject, rpc in REGISTRY.rpcs.items():
        subscribers = {
            u for u, p in perms.items() if u != accounts.OPERATOR and allowed(p.subscribe, subject)
        }
        assert subscribers == {rpc.service}, (
            f"{subject} may be served by {subscribers}, not only {rpc.service}"
        )


def test_the_gateway_requests_the_api_but_not_internal_workers(
    perms: dict[str, accounts.Permissions],
) -> None:
    gw = perms[accounts.GATEWAY]
    for subject, rpc in REGISTRY.rpcs.items():
        internal = rpc.service in accounts.INTERNAL_SERVICES and subject != f"{rpc.service}.health"
        assert allowed(gw.publish, subject) is not internal, subject
    assert not any(allowed(gw.publish, e) for e in REGISTRY.events), "the gateway must not publish events"
    assert not gw.responds


def test_internal_rpcs_are_requested_by_services_only(perms: dict[str, accounts.Permissions]) -> None:
    for rpc in accounts.rpcs_of("extract"):  # e.g. extract.preview.render: the docs service asks it
        callers = {u for u, p in perms.items() if u != accounts.OPERATOR and allowed(p.publish, rpc.subject)}
        assert callers == {"docs"}, (rpc.subject, callers)


def test_events_are_published_only_by_their_owners(perms: dict[str, accounts.Permissions]) -> None:
    for subject in REGISTRY.events:
        publishers = {u for u, p in perms.items() if u != accounts.OPERATOR and allowed(p.publish, subject)}
        owner = subject.split(".")[1]
        if owner == "ops":  # facts of the operator's CLI (`atrium restore`): no service may forge them
            assert not publishers and allowed(perms[accounts.OPERATOR].publish, subject), (
                subject,
                publishers,
            )
            continue
        assert publishers, f"nobody may publish {subject}"
        if owner in {s.name for s in catalog.SERVICES} - {"docs"}:  # docs' events come from its workers too
            assert publishers == {owner}, (subject, publishers)
    assert {u for u, p in perms.items() if allowed(p.publish, USER_REGISTERED.subject)} == {
        "auth",
        accounts.OPERATOR,
    }


def test_replies_stay_in_each_users_inbox(perms: dict[str, accounts.Permissions]) -> None:
    for user, p in perms.items():
        if user == accounts.OPERATOR:
            continue
        inboxes = {s for s in p.subscribe if s.startswith("_INBOX")}
        assert inboxes == {f"{nats_inbox_prefix(user)}.>"}, (user, inboxes)
        assert not any(s.startswith("_INBOX") for s in p.publish), f"{user} may write into inboxes"


def test_only_the_operator_deletes_streams(perms: dict[str, accounts.Permissions]) -> None:
    for stream in [*REGISTRY.streams, "KV_auth_state", "OBJ_documents"]:
        deleters = {u for u, p in perms.items() if allowed(p.publish, f"$JS.API.STREAM.DELETE.{stream}")}
        assert deleters == {accounts.OPERATOR}, (stream, deleters)


def test_each_durable_consumer_may_use_its_stream(
    perms: dict[str, accounts.Permissions], tmp_path: Path
) -> None:
    """Cross-check NEEDS against the services' real subscribers (built as the catalog builds them)."""
    checked = 0
    for spec in catalog.SERVICES:
        svc = spec.load()(
            ServiceSettings(
                name=spec.name,
                database_url="postgresql://u:p@127.0.0.1:1/x",
                schema=spec.name,
                data_dir=tmp_path,
                platform_secret="x" * 32,
            )
        )
        for sub in svc.broker.subscribers:
            stream = getattr(sub, "stream", None)
            if stream is None:
                continue
            durable = sub.config.durable_name if getattr(sub, "config", None) else ""
            for api in (
                f"$JS.API.CONSUMER.MSG.NEXT.{stream.name}.{durable}",
                f"$JS.ACK.{stream.name}.{durable}.1.1.1.1.0",
            ):
                assert allowed(perms[spec.name].publish, api), f"{spec.name} cannot {api}"
            checked += 1
    assert checked >= 5, "no durable consumers found: the check would prove nothing"


def test_config_has_hashes_only_and_passwords_persist(tmp_path: Path) -> None:
    conf = accounts.write_config(tmp_path)
    secrets_file = tmp_path / "secrets" / "nats.json"
    passwords = json.loads(secrets_file.read_text())
    text = conf.read_text()
    assert set(passwords) == set(accounts.users())
    for pw in passwords.values():
        assert pw not in text
    assert text.count('password: "$2') == len(passwords), "every user gets a bcrypt hash"
    for path in (conf, secrets_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    accounts.write_config(tmp_path)
    assert json.loads(secrets_file.read_text()) == passwords


def test_passwords_in_urls_never_reach_a_log_line() -> None:
    import logging

    from services.kit.logging import JsonFormatter, mask_secrets

    assert mask_secrets({"url": "nats://operator:s3cret-Pw_1@127.0.0.1:4222"}) == {
        "url": "nats://operator:***@127.0.0.1:4222"
    }
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "cannot reach %s", ("nats://docs:hunter2@nats:4222",), None
    )
    line = JsonFormatter("docs").format(record)
    assert "hunter2" not in line and "nats://docs:***@nats:4222" in line


def test_the_extract_workers_bucket_name_is_the_workers() -> None:
    from services.extraction.text.app import RUNS_BUCKET

    assert accounts.EXTRACT_RUNS_BUCKET == RUNS_BUCKET
