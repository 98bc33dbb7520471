"""The alert rules and the Grafana dashboard: valid for Prometheus's own tools, and about metrics that exist.

`promtool check rules` / `promtool test rules` (Debian's `prometheus` package; .ci/run installs it) check
the rules and their unit tests (infra/prometheus/alerts_test.yml); every metric an alert or a panel
names must be one that some process of the catalog or the gateway defines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from infra import catalog
from infra.prometheus import DASHBOARD, INSTALL_HINT, RULES

METRIC = re.compile(r"\b((?:atrium|process)_[a-z0-9_]+|up)\b(?!\s*\()")


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not shutil.which("promtool"):
        pytest.fail(f"promtool is not installed (.ci/run installs it): {INSTALL_HINT}")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def defined_metrics() -> set[str]:
    """Every series name the processes can expose: their modules define the metrics at import."""
    import gateway.app  # noqa: F401  (the gateway's request metrics)

    for spec in catalog.SERVICES:
        spec.load()
    names = {"up"}
    for family in REGISTRY.collect():
        kind = family.type
        if kind == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif kind == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
        names |= {s.name for s in family.samples}
    return names


def dashboard_exprs() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def without_strings(expr: str) -> str:
    """Label values ("5..", "queued|extracting") and legend templates are not metric names."""
    return re.sub(r'"[^"]*"|\{\{[^}]*\}\}', '""', expr)


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml", cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert of the issue (and the stuck-handler one) has a unit test that makes it fire.
    rules = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    tests = (RULES.parent / "alerts_test.yml").read_text()
    assert len(rules) == 7 and all(f"alertname: {name}" in tests for name in rules), rules


def test_alerts_and_dashboard_use_only_metrics_that_exist() -> None:
    known = defined_metrics()
    exprs = [
        (r["alert"], r["expr"]) for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
    ] + dashboard_exprs()
    missing = {
        (where, name)
        for where, expr in exprs
        for name in METRIC.findall(without_strings(expr))
        if name not in known
    }
    assert not missing, f"not defined by any process: {sorted(missing)}"
    every_panel_names_one = [where for where, e in exprs if not METRIC.findall(without_strings(e))]
    assert not every_panel_names_one, every_panel_names_one


def test_dashboard_expressions_parse(tmp_path: Path) -> None:
    """Each panel's PromQL as a recording rule: promtool refuses a rule whose expression does not parse."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"panel:{i}", "expr": e} for i, (_, e) in enumerate(dashboard_exprs())],
            }
        ]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", "panels.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_dashboard_is_grafana_json() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] == "Atrium" and dash["panels"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    for p in dash["panels"]:
        assert p["targets"] and p["datasource"]["type"] == "prometheus", p["title"]
