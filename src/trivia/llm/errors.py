"""The one error the chat clients raise, and how the QA side names it.

    LLMError           a chat call failed for a reason outside the model's answer: the endpoint
    └── QAError        was unreachable, timed out, kept answering 429/5xx after the retries,
                       answered 4xx or something unreadable, or the caller's deadline passed.

`QAError` (in `trivia.qa.errors`) is what the answering client raises, so reward code can tell
answering failures apart; catching `LLMError` catches both.
"""

from __future__ import annotations

__all__ = ["LLMError"]


class LLMError(Exception):
    """A chat call failed after its retries; `str()` says what and where, never secrets."""

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
