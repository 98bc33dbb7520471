"""`atrium remote …`: the HTTP API of a stack elsewhere, with a personal access token.

    export ATRIUM_URL=https://atrium.example.com ATRIUM_TOKEN=atp_…
    atrium remote me
    atrium remote documents --q invoice
    atrium remote request GET /documents/counts
    atrium remote request PATCH /documents/<id> '{"title": "March invoice"}'

The token goes in `Authorization: Bearer`; the answer is printed as JSON, an error envelope as the error's
code and message with a non-zero exit (1 for a refusal, 2 for an unreachable stack).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import httpx
import typer

remote_app = typer.Typer(
    help="The HTTP API of a remote stack, with a personal access token.", no_args_is_help=True
)

UrlOpt = Annotated[str, typer.Option("--url", envvar="ATRIUM_URL", help="The stack's public URL")]
TokenOpt = Annotated[
    str,
    typer.Option(
        "--token", envvar="ATRIUM_TOKEN", help="A personal access token (atp_…)", show_default=False
    ),
]


def _request(
    url: str, token: str, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
) -> Any:
    if not token:
        typer.echo("Give a personal access token: --token atp_… or ATRIUM_TOKEN.", err=True)
        raise typer.Exit(2)
    api = url.rstrip("/") + "/api/v1/" + path.lstrip("/")
    try:
        r = httpx.request(
            method.upper(),
            api,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "atrium-cli"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"{api} is not reachable: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        data = r.json()
    except ValueError:
        data = None
    if r.status_code >= 400:
        err = (data or {}).get("error") or {}
        typer.echo(f"{r.status_code} {err.get('code', '')}: {err.get('message', r.text[:300])}", err=True)
        raise typer.Exit(1)
    return data


def _print(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


@remote_app.command("request")
def request(
    method: Annotated[str, typer.Argument(help="GET, POST, PATCH, PUT or DELETE")],
    path: Annotated[str, typer.Argument(help="under /api/v1, e.g. /documents")],
    body: Annotated[str | None, typer.Argument(help="a JSON body")] = None,
    url: UrlOpt = "http://localhost:8080",
    token: TokenOpt = "",
) -> None:
    """Any API route."""
    try:
        payload = json.loads(body) if body else None
    except json.JSONDecodeError as exc:
        typer.echo(f"The body is not JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    _print(_request(url, token, method, path, payload))


@remote_app.command("me")
def me(url: UrlOpt = "http://localhost:8080", token: TokenOpt = "") -> None:
    """The account the token belongs to."""
    _print(_request(url, token, "GET", "/auth/me"))


@remote_app.command("documents")
def documents(
    q: Annotated[str | None, typer.Option("--q", help="full-text search")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    url: UrlOpt = "http://localhost:8080",
    token: TokenOpt = "",
) -> None:
    """The token owner's documents (newest first, or by relevance with --q)."""
    params = {"limit": str(limit), **({"q": q} if q else {})}
    _print(_request(url, token, "GET", "/documents", params=params))
