"""Forged and misused access tokens, over HTTP and straight on the bus (real NATS, real Postgres).

Every case gets `unauthenticated` (or `forbidden` for a valid non-admin) and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from contracts import AtriumError, Empty
from contracts.auth import ADMIN_LIST_USERS, ADMIN_UPDATE_USER, ME, AdminUpdateUser
from services.auth.tables import users
from services.kit.client import call
from services.kit.db import Database
from tests.conftest import PASSWORD, AppUser, Stack, register_and_login, unique_email
from tests.integration.test_auth_support import signing_key

ATTACKER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def good_claims(user: AppUser, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    real = jwt.decode(user.access_token, options={"verify_signature": False})
    return {**real, "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex, **changes}


def mint(
    stack: Stack, claims: dict[str, Any], *, key: Any = None, headers: dict[str, Any] | None = None
) -> str:
    real = signing_key(stack)
    return jwt.encode(
        claims, key or real.private_key, algorithm="RS256", headers={"kid": real.kid, **(headers or {})}
    )


def unsigned(stack: Stack, claims: dict[str, Any], alg: str = "none") -> str:
    header = {"alg": alg, "typ": "JWT", "kid": signing_key(stack).kid}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_key(stack: Stack, claims: dict[str, Any]) -> str:
    """The classic RS256→HS256 confusion: HMAC keyed with the server's public key PEM."""
    pub = (
        signing_key(stack)
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": signing_key(stack).kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(pub, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


async def refused_on_http(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    http.cookies.clear()
    r = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthenticated"
    return r.json()["error"]


async def refused_on_bus(stack: Stack, token: str) -> None:
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, ME, Empty(), token=token)
    assert err.value.code == "unauthenticated"


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid}


def forged_tokens(stack: Stack, user: AppUser) -> dict[str, str]:
    admin = good_claims(user, role="admin")
    real_header, real_payload, real_sig = user.access_token.split(".")
    tampered_payload = b64(json.dumps(admin).encode())
    return {
        "alg none": unsigned(stack, admin),
        "alg None": unsigned(stack, admin, alg="None"),
        "hs256 with public key": hs256_with_public_key(stack, admin),
        "unknown kid": mint(stack, admin, headers={"kid": "no-such-key"}),
        "attacker key with real kid": mint(stack, admin, key=ATTACKER_KEY),
        "jku header": mint(stack, admin, headers={"jku": "https://evil.example/jwks.json"}),
        "jwk header": mint(
            stack, admin, key=ATTACKER_KEY, headers={"jwk": public_jwk(ATTACKER_KEY, signing_key(stack).kid)}
        ),
        "x5u header": mint(stack, admin, headers={"x5u": "https://evil.example/cert.pem"}),
        "expired": mint(
            stack,
            good_claims(
                user, iat=int(time.time()) - 2000, nbf=int(time.time()) - 2000, exp=int(time.time()) - 1000
            ),
        ),
        "not yet valid": mint(stack, good_claims(user, nbf=int(time.time()) + 600)),
        "wrong audience": mint(stack, good_claims(user, aud="someone-else")),
        "wrong issuer": mint(stack, good_claims(user, iss="https://evil.example")),
        "refresh typ": mint(stack, good_claims(user, typ="refresh")),
        "reset typ": mint(stack, good_claims(user, typ="reset")),
        "missing sid": mint(stack, {k: v for k, v in good_claims(user).items() if k != "sid"}),
        "unknown role": mint(stack, good_claims(user, role="root")),
        "tampered payload": f"{real_header}.{tampered_payload}.{real_sig}",
        "refresh token as bearer": user.refresh_token,
    }


async def test_every_forged_token_is_refused_over_http_and_on_the_bus(
    http: httpx.AsyncClient, stack: Stack, new_user: AppUser
) -> None:
    assert (await http.get("/auth/me", headers=new_user.headers)).status_code == 200  # the real one works
    # A correctly minted token with the real key is accepted, so the refusals below are about the one change.
    assert (
        await http.get("/auth/me", headers={"Authorization": f"Bearer {mint(stack, good_claims(new_user))}"})
    ).status_code == 200
    for name, token in forged_tokens(stack, new_user).items():
        try:
            await refused_on_http(http, token)
            await refused_on_bus(stack, token)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


async def test_expiry_and_validity_reasons(http: httpx.AsyncClient, stack: Stack, new_user: AppUser) -> None:
    forged = forged_tokens(stack, new_user)
    assert (await refused_on_http(http, forged["expired"]))["details"]["reason"] == "expired"
    assert (await refused_on_http(http, forged["not yet valid"]))["details"]["reason"] == "not_yet_valid"


async def test_forged_admin_token_on_the_bus_changes_nothing(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser, auth_db: Database
) -> None:
    victim = await register_and_login(http)
    cmd = AdminUpdateUser(user_id=uuid.UUID(victim.id), role="admin")
    for name, token in forged_tokens(stack, new_user).items():
        with pytest.raises(AtriumError) as err:
            await call(stack.nc, ADMIN_UPDATE_USER, cmd, token=token)
        assert err.value.code == "unauthenticated", name
    for raw in ("", "Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer  ", "Bearer a.b"):
        with pytest.raises(AtriumError) as err:
            await call(stack.nc, ADMIN_UPDATE_USER, cmd, headers={"authorization": raw})
        assert err.value.code == "unauthenticated", raw
    # A genuine user token on an admin subject: forbidden.
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, ADMIN_UPDATE_USER, cmd, token=new_user.access_token)
    assert err.value.code == "forbidden"
    async with auth_db.session() as s:
        roles = dict(
            (
                await s.execute(
                    select(users.c.id, users.c.role).where(users.c.id.in_([victim.id, new_user.id]))
                )
            ).all()
        )
    assert set(roles.values()) == {"user"}


async def test_extra_fields_on_the_bus_are_refused(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser, auth_db: Database
) -> None:
    email = unique_email()  # an account whose address is not confirmed: email_verified could change
    r = await http.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    payload = json.dumps(
        {"user_id": user_id, "role": "user", "email_verified": True, "email": "taken@example.com"}
    ).encode()
    msg = await stack.nc.request(
        ADMIN_UPDATE_USER.subject,
        payload,
        timeout=10,
        headers={"authorization": f"Bearer {new_admin.access_token}"},
    )
    reply = json.loads(msg.data)
    assert reply["ok"] is False and reply["error"]["code"] == "invalid"
    async with auth_db.session() as s:
        row = (await s.execute(select(users).where(users.c.id == user_id))).one()
    assert (row.email, row.email_verified) == (email, False)


async def test_deactivated_and_demoted_tokens_refused_on_the_bus(
    stack: Stack, http: httpx.AsyncClient, new_admin: AppUser
) -> None:
    other_admin = await register_and_login(http)
    await http.patch(f"/admin/users/{other_admin.id}", json={"role": "admin"}, headers=new_admin.headers)
    pair = (await http.post("/auth/refresh", json={"refresh_token": other_admin.refresh_token})).json()
    admin_token = pair["access_token"]
    assert (await call(stack.nc, ADMIN_LIST_USERS, {"limit": 1}, token=admin_token)).total >= 1
    await http.patch(f"/admin/users/{other_admin.id}", json={"role": "user"}, headers=new_admin.headers)
    with pytest.raises(AtriumError) as err:
        await call(stack.nc, ADMIN_LIST_USERS, {"limit": 1}, token=admin_token)
    assert err.value.code == "unauthenticated"
    user = await register_and_login(http)
    await http.patch(f"/admin/users/{user.id}", json={"is_active": False}, headers=new_admin.headers)
    await refused_on_bus(stack, user.access_token)


async def test_replay_after_logout_on_the_bus(
    stack: Stack, http: httpx.AsyncClient, new_user: AppUser
) -> None:
    assert (await call(stack.nc, ME, Empty(), token=new_user.access_token)).email == new_user.email
    await http.post("/auth/logout", headers=new_user.headers)
    await refused_on_bus(stack, new_user.access_token)
    r = await http.post("/auth/login", json={"email": new_user.email, "password": PASSWORD})
    assert (await call(stack.nc, ME, Empty(), token=r.json()["access_token"])).email == new_user.email
