"""The one error the QA client raises.

    LLMError           (trivia.llm.errors) any chat call that failed after its retries
    └── QAError        an answering call failed for a reason outside the table: the endpoint
                       was unreachable, timed out, kept answering 429/5xx after the retries,
                       answered 4xx or something unreadable, or the caller's deadline passed.

A table that the answering model cannot use is not an error: the model answers
"Not answerable" and the reward scores it. A QAError must never become a score of 0.
"""

from __future__ import annotations

from trivia.llm.errors import LLMError

__all__ = ["QAError"]


class QAError(LLMError):
    """An answering call failed after its retries; `str()` says what and where, never secrets.

    Carries `endpoint`, `status_code` and `kind` ("timeout", "connect", "http", "bad_response",
    "deadline" or "error") like every `LLMError`.
    """
