"""Bearer-token auth for `/v1/*`: on when `TRIVIA_API_TOKEN` is set, compared in constant time.

No `from __future__ import annotations` here: FastAPI must see the dependency in the
closure's annotation as an object, not as a string naming a local variable.
"""

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from trivia.reward.limits import refuse_early

_UNAUTHORIZED = "missing or invalid bearer token"


def _valid(header: bytes | None, expected: bytes) -> bool:
    scheme, _, given = (header or b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected)


class BearerTokenCheck:
    """ASGI middleware: answer 401 under `path_prefix` before a byte of the body is read.

    FastAPI reads and parses a body before it runs dependencies, so without this an
    unauthenticated client could make the gateway parse megabytes of JSON.
    """

    def __init__(self, app: Any, token: SecretStr, path_prefix: str = "/v1/") -> None:
        self.app = app
        self.expected = token.get_secret_value().encode("utf-8")
        self.path_prefix = path_prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.path_prefix):
            header = dict(scope.get("headers") or []).get(b"authorization")
            if not _valid(header, self.expected):
                await refuse_early(
                    send, 401, _UNAUTHORIZED, headers=((b"www-authenticate", b"Bearer"),)
                )
                return
        await self.app(scope, receive, send)


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
                detail=_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_token
