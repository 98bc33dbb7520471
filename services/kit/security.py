"""Access-token verification that every service runs itself (zero trust on the bus).

A token is accepted only if it is an RS256 JWT whose header names a published key id and
carries no key material of its own, whose audience, issuer and type are Atrium's access token,
which is inside its validity window, and whose session and user are still live according to
the `auth_state` KV bucket that the auth service writes and every verifier watches — so a
revoked session, a deactivated user or a demoted admin is refused on the next request.

It fails closed: an entry the auth service could not store (the bucket full or away) reaches every
verifier anyway, pushed over core NATS (`progress.auth.state`) until it is stored; and a verifier whose
watch of the bucket broke refuses tokens (`unavailable`) once that lasts longer than `STALE_AFTER_S`,
rather than accept them on a state that may be missing a revocation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import jwt
from jwt.algorithms import RSAAlgorithm

from contracts import AtriumError, Forbidden, Unauthenticated, Unavailable
from contracts.auth import (
    ACCESS_TOKEN_TYPE,
    TOKEN_AUDIENCE,
    TOKEN_ISSUER,
    Jwks,
    UserState,
)
from contracts.base import Rpc, effect_of
from contracts.identity import (
    ENROL_SECOND_FACTOR,
    ENROLMENT_SUBJECTS,
    PAT_SCOPES,
    SecurityPolicy,
    app_of_service,
)

log = logging.getLogger("atrium.security")

REQUIRED_CLAIMS = ["exp", "iat", "nbf", "sub", "sid", "aud", "iss", "typ", "role"]
FORBIDDEN_HEADERS = ("jku", "jwk", "x5u", "x5c", "x5t", "crit")
JWKS_REFRESH_MIN_S = 5.0
JWKS_MAX_AGE_S = 300.0
POLICY_STATE_KEY = "policy.security"  # the `auth_state` entry holding the `SecurityPolicy`
STALE_AFTER_S = 5.0  # how long a broken watch of `auth_state` is tolerated before tokens are refused


@dataclass(frozen=True)
class Actor:
    user_id: UUID
    role: str
    session_id: str
    token: str
    kind: Literal["user", "service"] = "user"
    issued_at: float = 0.0
    # A personal access token's scopes and apps (claims `scp`, `apps`); None for a signed-in session.
    scopes: frozenset[str] | None = None
    apps: frozenset[str] | None = None
    # Claim `mfa`: whether the account had a second factor when the token was issued (None: not stated).
    second_factor: bool | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def scope_refusal(desc: Rpc[Any, Any], actor: Actor) -> str | None:
    """Why `actor`'s token may not call `desc` (its scopes or apps do not cover it), or None.

    `read` covers the Rpcs that change nothing, `write` those and the ones that change the caller's data,
    `admin` the administrators' Rpcs; no personal access token manages the account's own sign-in.
    A token limited to some apps reaches only their services, and the platform's read-only Rpcs."""
    if actor.scopes is None:
        return None
    effect = effect_of(desc)
    if effect == "account":
        return "A personal access token cannot manage the account's sign-in; sign in to do this."
    if desc.access == "admin":
        needed, granted = "admin", "admin" in actor.scopes
    elif effect == "read":
        needed, granted = "read", bool({"read", "write"} & actor.scopes)
    else:
        needed, granted = "write", "write" in actor.scopes
    if not granted:
        return f"This access token lacks the '{needed}' scope that {desc.subject} needs."
    if actor.apps is not None:
        app = app_of_service(desc.service)
        if app is None and effect != "read":
            return "This access token is limited to some apps; it may only read the platform's data."
        if app is not None and app not in actor.apps:
            return f"This access token is not for the {app} app."
    return None


def enrolment_refusal(desc: Rpc[Any, Any], actor: Actor, policy: SecurityPolicy) -> Forbidden | None:
    """The refusal of a caller the security policy asks for a second factor it lacks, unless `desc` is
    one of what it needs to set one up (`ENROLMENT_SUBJECTS`); None when the caller may go on."""
    if actor.second_factor is not False or not policy.requires(actor.role):
        return None
    if desc.subject in ENROLMENT_SUBJECTS:
        return None
    return Forbidden(
        "Your administrator requires a second factor for this account: set up an authenticator app or a "
        "passkey on the Security page, then refresh your session.",
        {"reason": ENROL_SECOND_FACTOR},
    )


KeySource = Callable[[], Awaitable[Jwks]]  # the published keys (`auth.keys.jwks`, or the auth service's own)
StateBucket = Callable[[], Awaitable[Any]]  # opens the `auth_state` KV bucket
# Subscribes `apply(key, value)` to the entries the auth service pushes while it cannot store them.
StatePush = Callable[[Callable[[str, bytes | None], None]], Awaitable[Any]]


VERIFIED_TOKENS_KEPT = 10_000  # tokens whose verified claims are kept (an access token lives 15 min)


class TokenVerifier:
    """Verifies access tokens. What it reads is injected: `key_source` returns the JWKS,
    `state_bucket` opens the `auth_state` bucket it follows (see `services.kit.bus.bus_verifier`)."""

    def __init__(
        self, *, key_source: KeySource, state_bucket: StateBucket, state_push: StatePush | None = None
    ):
        self.key_source = key_source
        self.state_bucket = state_bucket
        self.state_push = state_push
        self.watch_broken_at: float | None = None  # monotonic time the watch of `auth_state` broke
        self._stopping = False
        self._push_sub: Any = None
        self.keys: dict[str, Any] = {}
        self.revoked_sessions: set[str] = set()
        self.users: dict[str, UserState] = {}
        self.policy = SecurityPolicy()  # the sign-in security policy (`policy.security`)
        self._keys_loaded_at = 0.0
        self._keys_lock = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        self.kv: Any = None
        # token → (kid, key, claims) of tokens whose signature was verified (`_signed_claims`)
        self._verified: dict[str, tuple[str, Any, dict[str, Any]]] = {}

    async def start(self) -> None:
        self.kv = await self.state_bucket()
        watcher = await self.kv.watchall()
        # Load the whole state before serving, then follow changes in the background.
        async for entry in watcher:
            if entry is None:
                break
            self.apply(entry.key, entry.value, entry.operation)
        self._watcher = watcher
        self._watch_task = asyncio.create_task(self._follow(watcher))
        if self.state_push is not None:
            self._push_sub = await self.state_push(lambda key, value: self.apply(key, value))

    async def _follow(self, watcher: Any) -> None:
        while True:
            try:
                async for entry in watcher:
                    if entry is not None:
                        self.apply(entry.key, entry.value, entry.operation)
                if self._stopping:
                    return
                log.warning("auth_state watch ended; following it again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnects surface here; keep following
                log.warning("auth_state watch interrupted: %r", exc)
            if self.watch_broken_at is None:
                self.watch_broken_at = time.monotonic()
            await asyncio.sleep(1)
            try:
                # The latest value of every key again, then changes: nothing missed meanwhile stays missed.
                watcher = self._watcher = await self.kv.watchall(include_history=False)
                self.watch_broken_at = None
            except Exception:
                continue

    def apply(self, key: str, value: bytes | None, operation: Any = None) -> None:
        deleted = operation in ("DEL", "PURGE") or value is None or value == b""
        kind, _, ident = key.partition(".")
        if kind == "session":
            if deleted:
                self.revoked_sessions.discard(ident)
            else:
                self.revoked_sessions.add(ident)
        elif kind == "user":
            if deleted:
                self.users.pop(ident, None)
            else:
                self.users[ident] = UserState.model_validate(json.loads(value or b"{}"))
        elif key == POLICY_STATE_KEY:
            self.policy = SecurityPolicy() if deleted else SecurityPolicy.model_validate_json(value or b"{}")

    async def stop(self) -> None:
        self._stopping = True
        if self._push_sub is not None:
            try:
                await self._push_sub.unsubscribe()
            except Exception:
                pass
        if self._watch_task:
            self._watch_task.cancel()
        if getattr(self, "_watcher", None) is not None:
            try:
                await self._watcher.stop()
            except Exception:
                pass

    async def _load_keys(self, force: bool = False) -> None:
        """Fetch the JWKS when there is none, when it is older than JWKS_MAX_AGE_S (so a key removed
        from the auth service stops verifying everywhere) or, at most every few seconds, on an unknown kid."""
        async with self._keys_lock:
            age = time.monotonic() - self._keys_loaded_at
            if self.keys and not force and age < JWKS_MAX_AGE_S:
                return
            if self.keys and force and age < JWKS_REFRESH_MIN_S:
                return
            try:
                jwks = await self.key_source()
            except AtriumError as exc:
                if not self.keys:
                    raise
                # The auth service is unreachable: keep verifying with the known keys, retry shortly.
                log.warning(
                    "could not refresh the JWKS, keeping %d known key(s): %s", len(self.keys), exc.message
                )
                self._keys_loaded_at = time.monotonic() - JWKS_MAX_AGE_S + JWKS_REFRESH_MIN_S
                return
            self.keys = {k.kid: RSAAlgorithm.from_jwk(k.model_dump()) for k in jwks.keys}
            self._keys_loaded_at = time.monotonic()

    async def _signed_claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, audience, issuer and times are checked. A token verified
        before (the same string, signed by a key still current) is not verified again, only its expiry:
        the RSA check and PyJWT's parsing were the largest part of authorising a request."""
        await self._load_keys()
        known = self._verified.get(token)
        if known is not None:
            if self.keys.get(known[0]) is known[1]:
                if known[2]["exp"] <= time.time():
                    raise Unauthenticated(
                        "Your session has expired; refresh it or sign in again.", {"reason": "expired"}
                    )
                return known[2]
            del self._verified[token]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The access token is malformed; sign in again.") from None
        if header.get("alg") != "RS256":
            raise Unauthenticated("The access token is not signed the way Atrium signs tokens.")
        if any(h in header for h in FORBIDDEN_HEADERS):
            raise Unauthenticated("The access token carries key material of its own; it is refused.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("The access token names no signing key.")
        if kid not in self.keys:
            await self._load_keys(force=True)
        key = self.keys.get(kid)
        if key is None:
            raise Unauthenticated("The access token was signed by an unknown key; sign in again.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "Your session has expired; refresh it or sign in again.", {"reason": "expired"}
            ) from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The access token is not valid yet.", {"reason": "not_yet_valid"}) from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(
                f"The access token is invalid ({type(exc).__name__}); sign in again."
            ) from None
        self._verified[token] = (kid, key, claims)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            del self._verified[next(iter(self._verified))]  # the oldest verified
        return claims

    async def verify(self, authorization: str) -> Actor:
        token = _bearer(authorization)
        claims = await self._signed_claims(token)
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthenticated("This is not an access token.")
        sid, sub, role = str(claims["sid"]), str(claims["sub"]), str(claims["role"])
        if role not in ("user", "admin") or not isinstance(claims["iat"], int | float):
            raise Unauthenticated("The access token carries claims Atrium does not issue.")
        if self.watch_broken_at is not None and time.monotonic() - self.watch_broken_at > STALE_AFTER_S:
            raise Unavailable(
                "Whether this session is still live cannot be checked right now (the session state is out "
                "of reach); try again in a moment."
            )
        if sid in self.revoked_sessions:
            raise Unauthenticated("This session has been ended; sign in again.", {"reason": "revoked"})
        state = self.users.get(sub)
        if state is not None:
            if not state.active:
                raise Unauthenticated("This account is deactivated.", {"reason": "inactive"})
            # `iat` has whole seconds: refuse only earlier seconds, so a token minted right after the
            # change still works; same-second tokens of ended sessions are refused by `session.<sid>`.
            if int(claims["iat"]) < int(state.tokens_valid_after):
                raise Unauthenticated("This session has been ended; sign in again.", {"reason": "revoked"})
            if state.role != role:
                raise Unauthenticated(
                    "Your role has changed; refresh your session.", {"reason": "role_changed"}
                )
        try:
            user_id = UUID(sub)
        except ValueError:
            raise Unauthenticated("The access token names no valid user.") from None
        scopes, apps = _string_set(claims, "scp"), _string_set(claims, "apps")
        if scopes is not None and not scopes <= set(PAT_SCOPES):
            raise Unauthenticated("The access token carries claims Atrium does not issue.")
        second_factor = claims.get("mfa")
        if second_factor is not None and not isinstance(second_factor, bool):
            raise Unauthenticated("The access token carries claims Atrium does not issue.")
        return Actor(
            user_id=user_id,
            role=role,
            session_id=sid,
            token=token,
            issued_at=float(claims["iat"]),
            scopes=scopes,
            apps=apps,
            second_factor=second_factor,
        )


def _string_set(claims: dict[str, Any], name: str) -> frozenset[str] | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Unauthenticated("The access token carries claims Atrium does not issue.")
    return frozenset(value)


def _bearer(authorization: str) -> str:
    if not authorization:
        raise Unauthenticated("Sign in first: this request needs an access token.")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send the access token as 'Authorization: Bearer <token>'.")
    return token.strip()
