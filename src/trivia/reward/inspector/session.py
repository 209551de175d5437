"""Who may read `/inspect`: the holders of the gateway's bearer token, in a browser too.

A browser cannot send an `Authorization` header from a link, so a person signs in once with a
form that posts the token; the gateway answers with an HttpOnly cookie (`SameSite=Lax`, path
`/inspect`, 12 hours) holding an expiry and an HMAC of it keyed by the token. The token itself
never reaches the cookie, a URL, or the browser's history, and changing the token ends every
session. Scripts and clients can still send `Authorization: Bearer <token>`. With no token
configured the pages are open, like `/v1/*`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import Request
from pydantic import SecretStr

COOKIE = "trivia_inspect"
SESSION_S = 12 * 3600


class Session:
    """Checks tokens and issues and checks session cookies for one configured token."""

    def __init__(self, token: SecretStr | None) -> None:
        self._key = token.get_secret_value().encode("utf-8") if token is not None else None

    @property
    def open(self) -> bool:
        """No token configured: anyone may read the pages."""
        return self._key is None

    def token_ok(self, given: str) -> bool:
        """Whether `given` is the configured token (constant time)."""
        return self._key is not None and hmac.compare_digest(given.encode("utf-8"), self._key)

    def issue(self, now: float | None = None) -> str:
        """A cookie value valid for `SESSION_S` seconds."""
        expiry = str(int((now or time.time()) + SESSION_S))
        return f"{expiry}.{self._sign(expiry)}"

    def allows(self, request: Request) -> bool:
        """The request carries the bearer token or a valid, unexpired session cookie."""
        if self._key is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(credentials.strip()):
            return True
        return self.cookie_ok(request.cookies.get(COOKIE, ""))

    def cookie_ok(self, value: str, now: float | None = None) -> bool:
        expiry, _, signature = value.partition(".")
        if not expiry.isdigit() or int(expiry) < (now or time.time()):
            return False
        return hmac.compare_digest(signature, self._sign(expiry))

    def _sign(self, expiry: str) -> str:
        assert self._key is not None
        message = f"trivia-inspect-session:{expiry}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
