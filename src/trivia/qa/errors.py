"""The one error the QA client raises.

    QAError            an answering call failed for a reason outside the table: the endpoint
                       was unreachable, timed out, kept answering 429/5xx after the retries,
                       answered 4xx or something unreadable, or the caller's deadline passed.

A table that the answering model cannot use is not an error: the model answers
"Not answerable" and the reward scores it. A QAError must never become a score of 0.
"""

from __future__ import annotations

__all__ = ["QAError"]


class QAError(Exception):
    """An answering call failed after its retries; `str()` says what and where, never secrets."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status_code: int | None = None,
        kind: str = "error",
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status_code = status_code
        # One of: "timeout", "connect", "http", "bad_response", "deadline", "error".
        self.kind = kind
