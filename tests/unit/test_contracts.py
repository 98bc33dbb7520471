"""The bus contract holds: every subject is declared once, used only through its descriptor, and served."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from contracts import HTTP_STATUS, REGISTRY, Envelope, ErrorCode
from contracts.base import Rpc
from infra import catalog
from services.kit.config import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("services", "gateway", "infra")


def declared_prefixes() -> set[str]:
    return {s.split(".", 1)[0] for s in REGISTRY.rpcs} | {"events", "progress"}


def string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):  # f"events.docs.{x}" — report its constant head
            head = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            out.append((node.lineno, head))
    return out


def test_no_subject_strings_outside_contracts() -> None:
    prefixes = declared_prefixes()
    pattern = re.compile(r"^([a-z_]+)\.[a-z_]+(\.[a-z_*>]+)*\.?$")
    offenders = []
    for top in PRODUCTION:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for line, value in string_literals(path):
                m = pattern.match(value)
                if not m or m.group(1) not in prefixes or value.count(".") < 1:
                    continue
                if value.endswith(".py") or value.startswith(("services.", "gateway.", "infra.")):
                    continue
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {value!r}")
    assert not offenders, "subject strings must come from contracts descriptors:\n" + "\n".join(offenders)


def test_subject_naming() -> None:
    for subject, rpc in REGISTRY.rpcs.items():
        parts = subject.split(".")
        assert len(parts) in (2, 3), subject  # <service>.health or <service>.<noun>.<verb>
        assert rpc.service == parts[0]
    for subject, ev in REGISTRY.events.items():
        assert subject.startswith("events."), subject
        stream = REGISTRY.streams[ev.stream]
        assert stream.stores(subject), f"{subject} not stored by stream {ev.stream}"


def test_every_declared_rpc_has_a_subscriber(tmp_path: Path) -> None:
    served: set[str] = set()
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
        served.update(svc.rpcs.routes)
    missing = sorted(s for s in REGISTRY.rpcs if s not in served)
    assert not missing, f"declared Rpcs without a subscriber in any catalog service: {missing}"


def test_every_error_code_has_one_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert Envelope(ok=False, error={"code": "not_found", "message": "x"}).error.code == ErrorCode.NOT_FOUND


def test_descriptors_refuse_a_second_declaration() -> None:
    any_rpc = next(iter(REGISTRY.rpcs.values()))
    with pytest.raises(ValueError):
        Rpc(any_rpc.subject, any_rpc.request, any_rpc.reply)
