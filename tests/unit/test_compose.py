"""compose.yaml is valid against the Compose Specification and keeps the deployment rules."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from infra import catalog
from infra.shared import shared_dir

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = shared_dir() / "schemas" / "compose-spec.json"
STATEFUL = {"nats": "/data", "postgres": "/var/lib/postgresql/data"}


def load() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_matches_the_spec() -> None:
    jsonschema.validate(load(), json.loads(SCHEMA.read_text()))


def test_only_web_publishes_a_port_and_the_backend_is_internal() -> None:
    doc = load()
    published = {name for name, svc in doc["services"].items() if svc.get("ports")}
    assert published == {"web"}
    assert doc["networks"]["internal"]["internal"] is True and doc["networks"]["front"]["internal"] is True
    for name, svc in doc["services"].items():
        if name == "web":  # nginx reaches the gateway over `front` and nothing else of the backend
            assert svc["networks"] == ["front", "edge"], name
        elif name == "gateway":
            assert svc["networks"] == ["internal", "front"], name
        else:
            assert svc["networks"] == ["internal"], f"{name} must not reach the edge network"


def test_the_gateway_trusts_forwarded_addresses_from_nginx_network_only() -> None:
    """Issue 13 item 1: the gateway believes X-Forwarded-For from `front` (nginx's network), not from the
    backend network nor the world."""
    doc = load()
    subnet = doc["networks"]["front"]["ipam"]["config"][0]["subnet"]
    assert doc["services"]["gateway"]["environment"]["ATRIUM_TRUSTED_PROXIES"] == subnet


def test_containers_are_unprivileged() -> None:
    for name, svc in load()["services"].items():
        assert not svc.get("privileged"), name
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        user = str(svc.get("user", "0"))
        assert user.split(":")[0] not in ("0", "root"), f"{name} runs as root"


def test_state_lives_on_named_volumes() -> None:
    doc = load()
    named = set(doc["volumes"])
    for name, target in STATEFUL.items():
        mounts = doc["services"][name]["volumes"]
        assert any(m.split(":")[0] in named and m.split(":")[1] == target for m in mounts), name


def test_every_catalog_service_has_a_container() -> None:
    services = load()["services"]
    for spec in catalog.SERVICES:
        assert spec.name in services, f"{spec.name} is missing from compose.yaml"
        assert spec.module in " ".join(services[spec.name]["command"])
