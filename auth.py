"""Who is calling: `Token <SECRET>` is the service identity (the all-zero user), `Bearer <token>` a user."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from uuid import UUID

from starlette.requests import Request

from codegen.schema import SERVICE_USER_ID
from database import Database

SERVICE_USER = UUID(SERVICE_USER_ID)


class Unauthorized(Exception):
    pass


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a plain sha256 is enough to make a stolen table useless.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def issue_token(db: Database, username: str, token: str | None = None) -> str:
    """Creates the user if needed and stores a new token for them; returns the token (shown once)."""
    user = await db.upsert_user(username=username)
    assert user is not None
    token = token or new_token()
    await db.insert_user_token(token_hash=hash_token(token), user=user["id"])
    return token


async def user_of(request: Request) -> UUID:
    """The caller's user id; raises Unauthorized when the credentials are missing or wrong."""
    # Looked up once per request: a bulk DRS request checks it for every object.
    if (known := getattr(request.state, "user", None)) is not None:
        return known
    request.state.user = await authenticate(request)
    return request.state.user


async def authenticate(request: Request) -> UUID:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if not credentials:
        raise Unauthorized("credentials required: send `Authorization: Bearer <token>`")
    scheme = scheme.lower()
    if scheme == "token":
        secret = request.app.state.settings.secret
        if secret and hmac.compare_digest(credentials.encode(), secret.encode()):
            return SERVICE_USER
        raise Unauthorized("invalid service token")
    if scheme == "basic":
        # Basic is the same token as the password (the user name is not checked), for clients that only do Basic.
        try:
            credentials = base64.b64decode(credentials, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        scheme = "bearer"
    if scheme == "bearer":
        token_hash = hash_token(credentials)
        row = await request.app.state.db.get_user_by_token(token_hash=token_hash)
        if row is not None and hmac.compare_digest(row["token_hash"], token_hash):
            return row["id"]
        raise Unauthorized("invalid bearer token")
    raise Unauthorized("unsupported authorization scheme: use Bearer or Basic (or Token for the service)")


async def may_read(request: Request, owner: UUID | None) -> bool:
    """Whether the caller may read an object of `owner` (DRS_AUTH=token: the owner and the service only).
    Raises Unauthorized when credentials are needed and missing or wrong."""
    if request.app.state.settings.drs_auth == "public":
        return True
    user = await user_of(request)
    return user == SERVICE_USER or user == owner
