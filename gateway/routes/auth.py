"""`/api/v1/auth/*`: thin routes over `auth.*` subjects."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from contracts import Empty
from contracts.auth import LOGIN, ME, REGISTER, LoginRequest, RegisterUser, TokenPair, UserPublic

from ..bus import Call
from ..transport import Token, set_session_cookies

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=UserPublic, summary="Create an account")
async def register(body: RegisterUser, call: Call) -> UserPublic:
    return await call(REGISTER, body)


@router.post("/login", response_model=TokenPair, summary="Sign in with email and password (JSON)")
async def login(body: LoginRequest, call: Call, request: Request, response: Response) -> TokenPair:
    pair: TokenPair = await call(LOGIN, body)
    set_session_cookies(request, response, pair.access_token, pair.expires_in, pair.refresh_token,
                        pair.refresh_expires_in)
    return pair


@router.get("/me", response_model=UserPublic, summary="The signed-in user")
async def me(call: Call, token: Token) -> UserPublic:
    return await call(ME, Empty(), token=token)
