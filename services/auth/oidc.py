"""An OpenID Connect relying party: discovery, the authorization URL (state, nonce, PKCE S256), the code
exchange, and ID-token verification against the provider's JWKS (PyJWT): signature with a published key
(an unknown `kid` refetches the JWKS once), an asymmetric algorithm the provider announced, issuer,
audience (and `azp` when there are several), expiry and issue time with `leeway_s`, and the nonce.
Every call goes through an `Upstream` per issuer (timeouts, retries, circuit breaker)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt

from contracts import Unauthenticated, Unavailable

from .upstream import Upstream

DISCOVERY_TTL_S = 3600.0
JWKS_TTL_S = 600.0
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass
class OidcClient:
    """One per issuer; caches its discovery document and keys."""

    issuer: str
    upstream: Upstream
    leeway_s: float = 60.0
    _discovery: tuple[Discovery, float] | None = None
    _jwks: tuple[jwt.PyJWKSet, float] | None = field(default=None, repr=False)

    async def discover(self) -> Discovery:
        if self._discovery and time.monotonic() - self._discovery[1] < DISCOVERY_TTL_S:
            return self._discovery[0]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        response = await self.upstream.request("GET", url)
        try:
            doc: dict[str, Any] = response.json() if response.status_code == 200 else {}
            found = Discovery(
                issuer=doc["issuer"],
                authorization_endpoint=doc["authorization_endpoint"],
                token_endpoint=doc["token_endpoint"],
                jwks_uri=doc["jwks_uri"],
                algorithms=tuple(doc.get("id_token_signing_alg_values_supported") or ("RS256",)),
            )
        except (ValueError, KeyError, TypeError):
            raise Unavailable(
                f"{self.upstream.name} has no usable discovery document at {url} (status {response.status_code})."
            ) from None
        if found.issuer.rstrip("/") != self.issuer.rstrip("/"):
            raise Unavailable(
                f"{url} names another issuer ({found.issuer}); check the provider's issuer URL."
            )
        self._discovery = (found, time.monotonic())
        return found

    async def authorization_url(
        self, *, client_id: str, redirect_uri: str, scopes: str, state: str, nonce: str, pkce: Pkce
    ) -> str:
        disc = await self.discover()
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
        }
        joiner = "&" if "?" in disc.authorization_endpoint else "?"
        return disc.authorization_endpoint + joiner + urlencode(query)

    async def exchange_code(
        self, *, code: str, redirect_uri: str, client_id: str, client_secret: str, verifier: str
    ) -> dict[str, Any]:
        disc = await self.discover()
        response = await self.upstream.request(
            "POST",
            disc.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, client_secret),
        )
        body = _json(response)
        if response.status_code != 200 or "id_token" not in body:
            error = body.get("error_description") or body.get("error") or f"status {response.status_code}"
            raise Unauthenticated(
                f"{self.upstream.name} refused the sign-in ({error}); start again.",
                {"reason": "code_refused"},
            )
        return body

    async def _keys(self, refresh: bool = False) -> jwt.PyJWKSet:
        if self._jwks and not refresh and time.monotonic() - self._jwks[1] < JWKS_TTL_S:
            return self._jwks[0]
        disc = await self.discover()
        response = await self.upstream.request("GET", disc.jwks_uri)
        try:
            keys = jwt.PyJWKSet.from_dict(response.json())
        except (ValueError, jwt.PyJWKSetError):
            raise Unavailable(f"{self.upstream.name} publishes no usable keys at {disc.jwks_uri}.") from None
        self._jwks = (keys, time.monotonic())
        return keys

    async def verify_id_token(self, id_token: str, *, client_id: str, nonce: str) -> dict[str, Any]:
        disc = await self.discover()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise _bad("the ID token is malformed") from None
        alg = header.get("alg")
        if alg not in ASYMMETRIC or alg not in disc.algorithms:
            raise _bad(f"the ID token is signed with {alg!r}, which is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[alg],
                audience=client_id,
                issuer=disc.issuer,
                leeway=self.leeway_s,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise _bad("the ID token has expired", "id_token_expired") from None
        except jwt.PyJWTError as exc:
            raise _bad(f"the ID token is not valid ({type(exc).__name__})") from None
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise _bad("the ID token's nonce does not match this sign-in", "nonce_mismatch")
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
            raise _bad("the ID token was issued to another client")
        if claims["iat"] > time.time() + self.leeway_s:
            raise _bad("the ID token is issued in the future")
        return claims

    async def _key(self, kid: object) -> Any:
        for refresh in (False, True):
            keys = await self._keys(refresh)
            for k in keys.keys:
                if kid is None or k.key_id == kid:
                    return k
        raise _bad("the ID token is signed by a key the provider does not publish")


def _bad(what: str, reason: str = "id_token_invalid") -> Unauthenticated:
    return Unauthenticated(f"Single sign-on failed: {what}. Start again.", {"reason": reason})


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class OidcClients:
    """The relying party's clients, one per issuer, created on first use."""

    leeway_s: float = 60.0
    timeout_s: float = 5.0
    clients: dict[str, OidcClient] = field(default_factory=dict)

    def for_issuer(self, issuer: str, name: str) -> OidcClient:
        found = self.clients.get(issuer)
        if found is None:
            upstream = Upstream(f"the identity provider {name}", timeout_s=self.timeout_s)
            found = self.clients[issuer] = OidcClient(issuer, upstream, self.leeway_s)
        return found

    def forget(self, issuer: str) -> None:
        self.clients.pop(issuer, None)
