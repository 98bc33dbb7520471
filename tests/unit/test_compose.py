"""compose.yaml is valid against the Compose Specification and keeps the deployment rules."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from infra import catalog
from infra.shared import shared_dir

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = shared_dir() / "schemas" / "compose-spec.json"
STATEFUL = {"nats": "/data", "postgres": "/var/lib/postgresql/data", "prometheus": "/prometheus"}


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


def containers_of(name: str) -> list[str]:
    """The compose services running one process of the catalog: a service whose processes split their roles
    has a container per role (`docs` answers requests, `docs-events` works through events)."""
    specs = {s.name: s for s in catalog.SERVICES}
    return [name, f"{name}-events"] if name in specs and specs[name].split_roles else [name]


def test_every_catalog_service_has_a_container() -> None:
    services = load()["services"]
    for spec in catalog.SERVICES:
        for name in containers_of(spec.name):
            assert name in services, f"{name} is missing from compose.yaml"
            assert spec.module in " ".join(services[name]["command"])


def test_containers_run_with_the_role_priority_and_concurrency_of_atrium_up() -> None:
    """compose splits and prioritises the work as `atrium up` does (infra/catalog.py `environment_of`): the
    requests of a split service in one container, its events in another below them, the pipeline's workers
    below the requests."""
    services = load()["services"]
    told = ("ATRIUM_ROLE", "ATRIUM_NICE", "ATRIUM_CONCURRENCY")
    defaults = {"ATRIUM_ROLE": "all", "ATRIUM_NICE": "0"}
    for spec in catalog.SERVICES:
        processes = dataclasses.replace(spec, replicas=2 if spec.split_roles else 1).process_names
        for name, process in zip(containers_of(spec.name), [processes[0], processes[-1]], strict=False):
            want = {k: v for k, v in spec.environment_of(process).items() if defaults.get(k) != v}
            env = services[name]["environment"]
            assert {k: str(env[k]) for k in told if k in env} == want, name


def _mounts(svc: dict) -> dict[str, str]:
    """{target: volume} of a service's named-volume mounts."""
    out = {}
    for m in svc.get("volumes", []):
        source, target = m.split(":")[:2]
        out[target] = source
    return out


def test_each_process_mounts_only_the_credentials_migrate_hands_it() -> None:
    from infra.handout import NATS_SERVER, processes

    doc = load()
    handed = _mounts(doc["services"]["migrate"])
    for name in processes():
        volume = handed.get(f"/var/lib/atrium-processes/{name}")
        assert volume, f"migrate does not hand {name} its credentials"
        for container in containers_of(name):
            assert _mounts(doc["services"][container]) == {"/var/lib/atrium": volume}, container
        others = [s for s, svc in doc["services"].items() if volume in _mounts(svc).values()]
        assert sorted(others) == sorted(["migrate", *containers_of(name)]), f"{volume} is mounted by {others}"
    nats_volume = handed[f"/var/lib/atrium-processes/{NATS_SERVER}"]
    assert _mounts(doc["services"]["nats"])["/etc/nats/atrium"] == nats_volume
    # The stack's every password stays with migrate (and `atrium admin`, which runs in its container).
    state = handed["/var/lib/atrium"]
    assert [s for s, svc in doc["services"].items() if state in _mounts(svc).values()] == ["migrate"]


def test_the_image_owns_every_mount_point_migrate_writes() -> None:
    """A new named volume takes the owner of the directory it is mounted on: the image creates them for uid 10001."""
    from infra.handout import NATS_SERVER, processes

    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile.python").read_text()
    listed = dockerfile.split("for p in ", 1)[1].split(";", 1)[0].split()
    assert sorted(listed) == sorted([NATS_SERVER, *processes()])


def test_every_container_has_a_read_only_root() -> None:
    for name, svc in load()["services"].items():
        assert svc.get("read_only") is True, name


def test_hand_out_gives_each_process_its_own_passwords_only(tmp_path: Path) -> None:
    from infra.handout import NATS_SERVER, hand_out, processes
    from infra.nats.accounts import OPERATOR, read_or_create_passwords, users

    data, out = tmp_path / "state", tmp_path / "processes"
    nats_pw = read_or_create_passwords(data, users())
    db_pw = {s.name: f"db-{s.name}" for s in catalog.SERVICES if s.has_db}
    (data / "secrets" / "db.json").write_text(json.dumps(db_pw))
    for name in (*processes(), NATS_SERVER):
        (out / name).mkdir(parents=True)
    hand_out(data, out)
    for name in processes():
        files = {p.name: json.loads(p.read_text()) for p in (out / name / "secrets").iterdir()}
        assert files.pop("nats.json") == {name: nats_pw[name]}
        assert files == ({"db.json": {name: db_pw[name]}} if name in db_pw else {})
        assert all(oct(p.stat().st_mode)[-3:] == "600" for p in (out / name / "secrets").iterdir())
    server = {p.name: p.read_text() for p in (out / NATS_SERVER).iterdir()}
    assert sorted(server) == ["server.conf", "users.conf"]
    assert "max_payload: 8MB" in server["server.conf"] and 'include "users.conf"' in server["server.conf"]
    for password in nats_pw.values():  # the server holds bcrypt hashes only
        assert password not in server["users.conf"]
    assert OPERATOR not in processes()


def test_hand_out_refuses_a_missing_volume(tmp_path: Path) -> None:
    from infra.embedded import StackError
    from infra.handout import hand_out
    from infra.nats.accounts import read_or_create_passwords, users

    read_or_create_passwords(tmp_path / "state", users())
    with pytest.raises(StackError, match="mount auth's volume"):
        hand_out(tmp_path / "state", tmp_path / "nowhere")


def test_prometheus_scrapes_every_process_like_atrium_up() -> None:
    """Issue 17: compose has a Prometheus with the job and alert rules of `atrium up`'s, finding every
    process (each replica) on the backend network, unpublished, as an unprivileged read-only container."""
    from infra.prometheus import JOB, RULES

    doc = load()
    svc = doc["services"]["prometheus"]
    assert svc["networks"] == ["internal"] and not svc.get("ports")
    assert svc["read_only"] is True and str(svc["user"]).split(":")[0] not in ("0", "root")
    flags = dict(arg.split("=", 1) for arg in svc["command"])
    config_path = flags["--config.file"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
    assert mounts["/prometheus"] == "prometheus-data" and flags["--storage.tsdb.path"] == "/prometheus"
    config_file = ROOT / mounts[config_path]
    assert config_file == ROOT / "infra" / "prometheus" / "compose.yml"
    assert all(m.endswith(":ro") for m in svc["volumes"] if m.startswith("./"))
    config = yaml.safe_load(config_file.read_text())
    # The rule files, relative to the configuration, are mounted beside it: alerts.yml of the repository.
    config_dir = Path(config_path).parent
    for rule_file in config["rule_files"]:
        assert ROOT / mounts[str(config_dir / rule_file)] == RULES == config_file.parent / rule_file
    [job] = config["scrape_configs"]
    assert job["job_name"] == JOB
    [dns] = job["dns_sd_configs"]
    processes = {
        name: s
        for name, s in doc["services"].items()
        if s.get("command", [""])[0] == "python" and name != "migrate"
    }
    assert sorted(dns["names"]) == sorted(processes)
    for name, process in processes.items():
        env = process["environment"]
        assert env["ATRIUM_METRICS_HOST"] == "0.0.0.0" and int(env["ATRIUM_METRICS_PORT"]) == dns["port"], (
            name
        )
        assert "internal" in process["networks"], name
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (.ci/run installs it): sudo apt-get install prometheus"
    res = subprocess.run([promtool, "check", "config", str(config_file)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
