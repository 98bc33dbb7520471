"""Auth service subjects and models (the identity issue extends this module)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import EmailStr, Field

from .base import Contract, Empty, WireSecret, Event, Rpc, health_rpc
from .streams import AUTH_STREAM

Role = Literal["user", "admin"]


class RegisterUser(Contract):
    email: EmailStr
    password: WireSecret = Field(min_length=1, max_length=1024)
    full_name: str | None = Field(default=None, max_length=200)


class LoginRequest(Contract):
    email: EmailStr
    password: WireSecret = Field(min_length=1, max_length=1024)
    remember_me: bool = False


class UserPublic(Contract):
    id: UUID
    email: EmailStr
    full_name: str | None = None
    role: Role
    is_active: bool
    email_verified: bool = False
    created_at: datetime


class TokenPair(Contract):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_expires_in: int
    user: UserPublic


class Jwk(Contract):
    kty: str
    kid: str
    use: str = "sig"
    alg: str = "RS256"
    n: str
    e: str


class Jwks(Contract):
    keys: list[Jwk]


class UserRegistered(Contract):
    user_id: UUID
    email: EmailStr
    full_name: str | None = None
    role: Role
    registered_at: datetime


AUTH_HEALTH = health_rpc("auth")
REGISTER = Rpc("auth.user.register", RegisterUser, UserPublic, access="public", summary="Create an account")
LOGIN = Rpc("auth.session.login", LoginRequest, TokenPair, access="public", summary="Password login; opens a session")
ME = Rpc("auth.user.me", Empty, UserPublic, access="user", summary="The calling user")
JWKS = Rpc("auth.keys.jwks", Empty, Jwks, access="public", summary="Public keys that verify access tokens")

USER_REGISTERED = Event("events.auth.user_registered", UserRegistered, stream=AUTH_STREAM.name,
                        summary="A new account exists")

# Token claims every verifier checks.
TOKEN_AUDIENCE = "atrium"
TOKEN_ISSUER = "atrium-auth"
ACCESS_TOKEN_TYPE = "access"
# NATS KV bucket the auth service writes and every verifier watches: revoked sessions
# (`session.<sid>`) and the live state of each user (`user.<id>`: active, role, tokens valid after).
AUTH_STATE_BUCKET = "auth_state"


class UserState(Contract):
    active: bool = True
    role: Role = "user"
    tokens_valid_after: float = 0.0  # epoch seconds; access tokens issued before are refused
