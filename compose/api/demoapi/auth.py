"""Password hashing (argon2), signed tokens (JWT) and the current-user dependency."""

import asyncio
import time
from typing import Annotated

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import ApiError

# OWASP's argon2id minimum (19 MiB, t=2, p=1): realistic cost without exhausting memory under load.
PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
JWT_ALGORITHM = "HS256"
# Longer than any load run, so virtual users log in once.
TOKEN_TTL_SECONDS = 12 * 3600

_bearer = HTTPBearer(auto_error=False)
# Verified against when the email is unknown, so both failures cost the same time.
_UNKNOWN_USER_HASH = PASSWORD_HASHER.hash("no such user")


def hash_password(password: str) -> str:
    return PASSWORD_HASHER.hash(password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Verify off the event loop (argon2 is CPU-bound and releases the GIL); None is an unknown user."""
    try:
        ok = await asyncio.to_thread(PASSWORD_HASHER.verify, password_hash or _UNKNOWN_USER_HASH, password)
        return ok and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def issue_token(secret: str, user_id: int, email: str) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "email": email, "iat": now, "exp": now + TOKEN_TTL_SECONDS}
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def current_user_id(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """The user id of a valid `Authorization: Bearer <token>`; 401 otherwise."""
    if credentials is None:
        raise _unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>' from /api/v1/auth/login"
        )
    try:
        claims = jwt.decode(
            credentials.credentials,
            request.app.state.settings.secret_key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
        return int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError):
        raise _unauthorized("invalid or expired token: log in again at /api/v1/auth/login") from None


CurrentUserId = Annotated[int, Depends(current_user_id)]
