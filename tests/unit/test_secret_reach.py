"""Issue 13, item 2: the token signing keys stay with the auth service.

Only the auth service (which signs) and the operator's `atrium keys` / `atrium admin` commands name the
`<data>/keys` directory or import the key ring; every other process verifies with the public JWKS it asks
auth for (`auth.keys.jwks`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ("services/auth/", "infra/cli_auth.py")


def _reaches_keys(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if isinstance(node.right, ast.Constant) and node.right.value == "keys":
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("auth.keys"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Import) and any(a.name.endswith("auth.keys") for a in node.names):
            lines.append(node.lineno)
    return lines


def test_only_auth_and_its_cli_reach_the_signing_keys() -> None:
    found = {}
    for folder in ("services", "gateway", "infra", "contracts"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            lines = _reaches_keys(ast.parse(path.read_text(), rel))
            if lines:
                found[rel] = lines
    assert found, "the check finds nothing at all: it no longer sees how auth loads its keys"
    assert any(rel.startswith("services/auth/") for rel in found)
    outside = {rel: lines for rel, lines in found.items() if not rel.startswith(ALLOWED)}
    assert not outside, f"only auth may read <data>/keys: {outside}"
