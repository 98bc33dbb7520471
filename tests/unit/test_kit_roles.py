"""A service process's role (services/kit/config.py, ROLES): `requests` answers the service's Rpc subjects
only, `events` works through its event consumers and loops only (and answers its health check), `all` does
both; `atrium up` gives the documents service's processes split roles and runs the pipeline's processes at a
lower priority (infra/catalog.py; tests/integration/test_devstack.py sees them so)."""

from __future__ import annotations

from typing import Any

import pytest

from infra import catalog
from services.docs.app import EVENTS, LOOPS, RPCS, create_service
from services.kit.config import ServiceSettings, process_role


def _bound(role: str) -> Any:
    return create_service(ServiceSettings(name="docs", role=role))


def test_each_role_binds_its_part_of_the_service() -> None:
    every = _bound("all")
    routes = set(every.rpcs.routes)
    assert {d.subject for d in RPCS} < routes
    assert len(every.durables) == len(EVENTS)
    assert len(every.loops._pending) == len(LOOPS)

    requests = _bound("requests")
    assert set(requests.rpcs.routes) == routes
    assert requests.durables == [] and requests.loops._pending == []

    events = _bound("events")
    assert set(events.rpcs.routes) == routes - {d.subject for d in RPCS}  # the health check only
    assert len(events.rpcs.routes) == 1
    assert len(events.durables) == len(EVENTS)
    assert len(events.loops._pending) == len(LOOPS)


def test_a_role_is_read_from_the_environment_and_a_wrong_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert process_role(None) == "all" and process_role(" Events ") == "events"
    monkeypatch.setenv("ATRIUM_ROLE", "requests")
    assert ServiceSettings.from_env("docs").role == "requests"
    monkeypatch.setenv("ATRIUM_ROLE", "readers")
    with pytest.raises(ValueError, match="ATRIUM_ROLE must be one of all, requests, events"):
        ServiceSettings.from_env("docs")
    monkeypatch.setenv("ATRIUM_ROLE", "events")
    monkeypatch.setenv("ATRIUM_NICE", "10")
    assert ServiceSettings.from_env("docs").niceness == 10
    for wrong in ("-5", "20", "low"):
        monkeypatch.setenv("ATRIUM_NICE", wrong)
        with pytest.raises(ValueError, match="ATRIUM_NICE must be a whole number from 0 to 19"):
            ServiceSettings.from_env("docs")


def test_the_last_documents_process_works_through_events_the_others_answer_requests() -> None:
    def roles(n: int) -> list[str]:
        s = catalog.ServiceSpec("docs", "services.docs.app:create_service", replicas=n, split_roles=True)
        return [s.role_of(name) for name in s.process_names]

    assert roles(1) == ["all"]
    assert roles(2) == ["requests", "events"]
    assert roles(3) == ["requests", "requests", "events"]
    assert catalog.spec("docs").split_roles
    docs = catalog.spec("docs")
    nice = {name: docs.niceness_of(name) for name in docs.process_names}
    assert nice == {"docs-1": 0, "docs-2": catalog.BACKGROUND_NICENESS}
    assert catalog.spec("extract").niceness_of("extract") == catalog.BACKGROUND_NICENESS
    assert catalog.spec("auth").niceness_of("auth") == 0
    assert docs.environment_of("docs-1") == {
        "ATRIUM_ROLE": "requests",
        "ATRIUM_NICE": "0",
        "ATRIUM_CONCURRENCY": "16",
    }
    assert docs.environment_of("docs-2") == {"ATRIUM_ROLE": "events", "ATRIUM_NICE": "10"}
    assert all(s.role_of(s.process_names[0]) == "all" for s in catalog.SERVICES if s.name != "docs")
