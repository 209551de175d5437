"""The async client for OpenAI-compatible answering servers (vLLM, `swift deploy`, the stubs).

One call asks one question about one table (`prompts.build_messages`) with temperature 0 and a
small `max_tokens`, and returns the raw completion text; the caller extracts `<answer>`.

Balancing, retries, ejection and deadlines are the chat client's (`trivia.llm.client`); this one
adds the question prompt, table affinity (the questions about one table go to one endpoint),
Qwen3 without thinking by default, the `trivia_qa_*` metrics, prefix priming, and what makes a
reply usable: a reply cut at `max_tokens` (finish "length") or with no text is a `QAError` of
kind "truncated" for that question (no signal, never a 0), retried like any failure as long as
the retries allow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

from trivia.llm.affinity import affinity_key
from trivia.llm.client import ChatClient, ChatClientHolder
from trivia.llm.errors import LLMError, QAError
from trivia.qa.metrics import QA_METRICS
from trivia.qa.prompts import build_messages
from trivia.settings import DEFAULTS, Settings

# Qwen3 thinks before answering unless told not to; vLLM and swift pass this to the chat template.
DEFAULT_EXTRA_BODY: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": False}}


#: The keyword arguments `from_settings` reads from the `qa_`-prefixed setting of the same name.
_FROM_SETTINGS = (
    "model",
    "max_concurrency_per_endpoint",
    "request_timeout_s",
    "max_retries",
    "backoff_base_s",
    "eject_after_failures",
    "eject_for_s",
    "max_tokens",
    "prime_prefix",
    "table_affinity",
)


class QAClient(ChatClientHolder):
    """Asks questions about tables of one or more OpenAI-compatible servers; see the module doc."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The client the `TRIVIA_QA_*` settings describe."""
        s = settings
        options = {name: getattr(s, f"qa_{name}") for name in _FROM_SETTINGS}
        api_key = s.qa_api_key.get_secret_value() if s.qa_api_key else None
        return cls(s.qa_urls, api_key=api_key, resolve_every_s=s.qa_resolve_s, **options)

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        max_tokens: int = DEFAULTS.qa_max_tokens,
        prime_prefix: bool = False,
        table_affinity: bool = True,
        extra_body: dict[str, Any] | None = None,
        **chat_options: Any,
    ) -> None:
        """`chat_options` go to `ChatClient` (model, api_key, timeouts, retries, ejection).

        `extra_body` is merged into every chat request (default: Qwen3 without thinking).
        `prime_prefix`: `answer_many` sends the first question alone and the rest once it is
        answered, so a server with a prefix cache computes the table's prefix once instead of
        once per concurrent question (worth it on vLLM; costs one extra round trip per table).
        `table_affinity`: the questions about one table go to one endpoint, whose prefix cache
        then holds the table (`trivia.llm.affinity`); False spreads every call least-loaded.
        """
        self.client = ChatClient(
            endpoints,
            extra_body=DEFAULT_EXTRA_BODY if extra_body is None else extra_body,
            metrics=QA_METRICS,
            name="QA",
            **chat_options,
        )
        self._max_tokens = max_tokens
        self._prime_prefix = prime_prefix
        self._table_affinity = table_affinity

    async def model_name(self) -> str:
        """The model answering (asked of `/v1/models` once unless given); raises QAError."""
        try:
            return await self.client.model_name()
        except LLMError as exc:
            raise QAError.like(exc) from exc

    async def answer(self, table: str, question: str, *, deadline: float | None = None) -> str:
        """The raw completion text for `question` about `table`; raises QAError."""
        key = affinity_key(table) if self._table_affinity else None
        return await self._answer(table, question, key, deadline)

    async def _answer(
        self, table: str, question: str, key: str | None, deadline: float | None
    ) -> str:
        try:
            reply = await self.client.chat(
                build_messages(table, question),
                temperature=0,
                max_tokens=self._max_tokens,
                deadline=deadline,
                route_key=key,
                whole=True,
            )
        except LLMError as exc:
            raise QAError.like(exc) from exc
        return reply.text

    async def answer_many(
        self, table: str, questions: Sequence[str], *, deadline: float | None = None
    ) -> list[str | QAError]:
        """Answers to every question about one table, in order; a failed one is its QAError."""

        key = affinity_key(table) if self._table_affinity else None

        async def one(question: str) -> str | QAError:
            try:
                return await self._answer(table, question, key, deadline)
            except QAError as exc:
                return exc

        if not questions:
            return []
        if self._prime_prefix and len(questions) > 1:
            first = await one(questions[0])
            rest = await asyncio.gather(*(one(q) for q in questions[1:]))
            return [first, *rest]
        return list(await asyncio.gather(*(one(q) for q in questions)))
