"""The kit's TokenVerifier as every other service runs it: keys from `auth.keys.jwks` over the bus,
revocations and user state from the `auth_state` KV watch (real NATS, real auth service)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from contracts import Unauthenticated
from services.kit.bus import bus_verifier
from services.kit.security import TokenVerifier
from tests.conftest import AppUser, Stack, register_and_login


async def refused_soon(verifier: TokenVerifier, token: str) -> Unauthenticated:
    """A remote verifier learns from its KV watch; give the push a moment to arrive."""
    for _ in range(100):
        try:
            await verifier.verify(f"Bearer {token}")
        except Unauthenticated as err:
            return err
        await asyncio.sleep(0.05)
    raise AssertionError("the remote verifier still accepts the token")


@pytest.fixture
async def remote_verifier(stack: Stack):  # type: ignore[no-untyped-def]
    verifier = bus_verifier(lambda: stack.nc)
    await verifier.start()
    yield verifier
    await verifier.stop()


async def test_remote_verifier_follows_revocations(
    http: httpx.AsyncClient, new_admin: AppUser, remote_verifier: TokenVerifier
) -> None:
    user = await register_and_login(http)
    actor = await remote_verifier.verify(f"Bearer {user.access_token}")
    assert str(actor.user_id) == user.id and actor.role == "user"
    await http.patch(f"/admin/users/{user.id}", json={"is_active": False}, headers=new_admin.headers)
    err = await refused_soon(remote_verifier, user.access_token)
    assert err.details["reason"] in ("inactive", "revoked")

    other = await register_and_login(http)
    await remote_verifier.verify(f"Bearer {other.access_token}")
    await http.post("/auth/logout", headers=other.headers)
    assert (await refused_soon(remote_verifier, other.access_token)).details["reason"] == "revoked"


async def test_remote_verifier_refuses_unknown_keys(
    remote_verifier: TokenVerifier, new_user: AppUser
) -> None:
    header, payload, sig = new_user.access_token.split(".")
    with pytest.raises(Unauthenticated):
        await remote_verifier.verify(f"Bearer {header}.{payload}.{sig[:-4]}AAAA")
    with pytest.raises(Unauthenticated):
        await remote_verifier.verify("Bearer " + new_user.refresh_token)
    assert (await remote_verifier.verify(f"Bearer {new_user.access_token}")).session_id


async def test_a_removed_key_stops_verifying_after_the_jwks_max_age(stack: Stack, new_user: AppUser) -> None:
    from contracts import Unavailable
    from contracts.auth import Jwks
    from services.auth.keys import generate_key
    from services.kit import security
    from tests.integration.test_auth_support import signing_key

    live = Jwks(keys=[signing_key(stack).public_jwk()])
    published = {"jwks": live, "fail": False}

    async def source() -> Jwks:
        if published["fail"]:
            raise Unavailable("auth is down")
        return published["jwks"]

    verifier = bus_verifier(lambda: stack.nc, key_source=source)
    token = f"Bearer {new_user.access_token}"
    assert await verifier.verify(token)
    # The auth service is unreachable when the JWKS is due: the known keys keep working.
    published["fail"] = True
    verifier._keys_loaded_at -= security.JWKS_MAX_AGE_S + 1
    assert await verifier.verify(token)
    # The key was rotated out: once the JWKS is re-read, its tokens are refused.
    other = await asyncio.to_thread(generate_key, stack.data_dir / "unpublished-keys")
    published.update(fail=False, jwks=Jwks(keys=[other.public_jwk()]))
    verifier._keys_loaded_at -= security.JWKS_MAX_AGE_S + 1
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)


async def test_a_token_verified_before_is_still_checked_each_time(
    remote_verifier: TokenVerifier, new_user: AppUser
) -> None:
    """The verifier keeps the claims of a token whose signature it checked (the same string only): another
    signature on the same claims is still refused, and a kept token stops working when it expires."""
    import time

    token = new_user.access_token
    first = await remote_verifier.verify(f"Bearer {token}")
    assert token in remote_verifier._verified
    header, payload, sig = token.split(".")
    with pytest.raises(Unauthenticated):
        await remote_verifier.verify(f"Bearer {header}.{payload}.{sig[:-4]}AAAA")
    again = await remote_verifier.verify(f"Bearer {token}")
    assert (again.user_id, again.session_id) == (first.user_id, first.session_id)
    kid, key, claims = remote_verifier._verified[token]
    remote_verifier._verified[token] = (kid, key, {**claims, "exp": int(time.time()) - 1})
    with pytest.raises(Unauthenticated) as expired:
        await remote_verifier.verify(f"Bearer {token}")
    assert expired.value.details["reason"] == "expired"
