"""Bearer-token auth for `/v1/*`: on when `TRIVIA_API_TOKEN` is set, compared in constant time.

No `from __future__ import annotations` here: FastAPI must see the dependency in the
closure's annotation as an object, not as a string naming a local variable.
"""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

__all__ = ["bearer_token_dependency"]


def bearer_token_dependency(token: SecretStr) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that answers 401 unless the request carries `Bearer <token>`."""
    expected = token.get_secret_value().encode("utf-8")
    scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer <TRIVIA_API_TOKEN>`")

    async def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(scheme)],
    ) -> None:
        given = credentials.credentials.encode("utf-8") if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
