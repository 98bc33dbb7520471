"""The two baselines of bench_hotpath: what `GET /auth/me` costs without Atrium's gateway and bus.

- `monolith`: one FastAPI process does the work itself — verifies the RS256 access token with the auth
  service's public key (the kit's `TokenVerifier`, the same code the auth service runs), reads the
  user's row from the auth service's `users` table (the kit's `Database`, the same engine settings)
  and returns `UserPublic` as JSON.
- `proxy`: the seed's original design — a FastAPI proxy that forwards every request with httpx to a
  second FastAPI service (here: the monolith), as the first gateway did.

    python -m bench.hotpath_apps monolith --port N   (env: DATABASE_URL, ATRIUM_KEY_DIR)
    python -m bench.hotpath_apps proxy --port N --backend http://127.0.0.1:M

Both run under uvicorn with the same settings as the gateway (`gateway.__main__.SERVER_OPTIONS`).
"""

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response

from contracts import HTTP_STATUS, AtriumError
from contracts.auth import Jwks, UserPublic
from services.auth.handlers.common import USER_BY_ID
from services.auth.keys import KeyRing
from services.kit.db import Database
from services.kit.security import Actor, TokenVerifier


def monolith_app(database_url: str, key_dir: Path) -> FastAPI:
    keys = KeyRing(key_dir)

    async def local_keys() -> Jwks:
        return keys.jwks()

    async def no_state() -> None:  # never called: the monolith does not `start()` the verifier
        raise RuntimeError("the monolith follows no auth_state bucket")

    # Verification needs no bus here: the key comes from the key directory, nothing is revoked.
    verifier = TokenVerifier(key_source=local_keys, state_bucket=no_state)
    db = Database(database_url, "auth")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await db.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.exception_handler(AtriumError)
    async def atrium_error(_: Request, exc: AtriumError) -> JSONResponse:
        return JSONResponse({"error": exc.to_body().model_dump(mode="json")}, HTTP_STATUS[exc.code])

    async def current_actor(authorization: Annotated[str, Header()] = "") -> Actor:
        return await verifier.verify(authorization)

    @app.get("/api/v1/auth/me")
    async def me(actor: Annotated[Actor, Depends(current_actor)]) -> UserPublic:
        # The auth service's read: the same prepared statement through the kit's Database.
        row = await db.fetch_one(USER_BY_ID, user_id=actor.user_id)
        if row is None:
            return JSONResponse({"error": "gone"}, 404)  # type: ignore[return-value]
        return UserPublic(
            id=row.id,
            email=row.email,
            full_name=row.full_name,
            role=row.role,
            is_active=row.is_active,
            email_verified=row.email_verified,
            created_at=row.created_at,
        )

    return app


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


def proxy_app(backend: str) -> FastAPI:
    client: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        client["http"] = httpx.AsyncClient(
            base_url=backend, limits=httpx.Limits(max_connections=100, max_keepalive_connections=100)
        )
        yield
        await client["http"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
        upstream = await client["http"].request(
            request.method,
            f"/{path}",
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        out = {k: v for k, v in upstream.headers.items() if k not in HOP_BY_HOP}
        return Response(upstream.content, status_code=upstream.status_code, headers=out)

    return app


def main() -> None:
    import uvicorn

    from gateway.__main__ import SERVER_OPTIONS

    parser = argparse.ArgumentParser(prog="hotpath_apps")
    parser.add_argument("design", choices=("monolith", "proxy"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", default="")
    args = parser.parse_args()
    app: Any = (
        monolith_app(os.environ["DATABASE_URL"], Path(os.environ["ATRIUM_KEY_DIR"]))
        if args.design == "monolith"
        else proxy_app(args.backend)
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, **SERVER_OPTIONS)


if __name__ == "__main__":
    main()
