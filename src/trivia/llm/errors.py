"""The one error tree of the chat clients (`ChatClient`, and the QA and VLM clients on it).

    LLMError        a chat call failed for a reason outside the model's answer, after the
    │               retries; `kind` says which:
    │                 "connect"       unreachable, or the connection broke (malformed or dropped
    │                                 response), on every attempt
    │                 "timeout"       no whole answer within `request_timeout_s`, on every attempt
    │                 "http"          kept answering 429/5xx, or answered another 4xx
    │                                 (`status_code`; a 4xx is the request's fault: not retried)
    │                 "bad_response"  the answer was not a chat completion (not retried)
    │                 "truncated"     the reply stopped at `max_tokens` (finish "length") or had
    │                                 no text: no answer to score (QA only)
    │                 "deadline"      the caller's deadline passed (slot waits and backoff count)
    └── QAError     the same, raised by the answering client (`trivia.qa.client.QAClient`), so
                    reward code tells answering failures apart. A QAError is "no signal" for its
                    question (`qa_f1: null`), never a score of 0.

A table the answering model cannot use is not an error: the model answers "Not answerable" and
the reward scores it. `str()` says what failed and where (the endpoint without credentials);
the API key appears nowhere but in the Authorization header.
"""

from __future__ import annotations


class LLMError(Exception):
    """A chat call failed after its retries; see the module docstring for `kind`."""

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
        self.kind = kind

    @classmethod
    def like(cls, error: LLMError) -> LLMError:
        """`error` as this class (message, endpoint, status and kind kept)."""
        return cls(
            str(error), endpoint=error.endpoint, status_code=error.status_code, kind=error.kind
        )


class QAError(LLMError):
    """An answering call failed; the question has no answer to score (see the module doc)."""
