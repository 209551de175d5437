"""The async client for OpenAI-compatible answering servers (vLLM, `swift deploy`, the stubs).

One call asks one question about one table (`prompts.build_messages`) with temperature 0 and a
small `max_tokens`, and returns the raw completion text; the caller extracts `<answer>`.

Balancing, retries, ejection, deadlines and the transport are the shared chat client's
(`trivia.llm.client.ChatClient`, whose docstring tells how calls are spread and retried); this
one adds the question prompt, Qwen3 without thinking by default, the `trivia_qa_*` metrics,
`QAError`, and prefix priming. The answering path makes ~15,000 calls per optimiser step, which
is why the shared transport is httpx on aiohttp's pool (`trivia.llm.transport`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from trivia.llm.client import ChatClient
from trivia.llm.endpoints import EndpointStats, parse_endpoints
from trivia.llm.errors import LLMError
from trivia.llm.metrics import CallMetrics
from trivia.llm.transport import aiohttp_transport
from trivia.qa.errors import QAError
from trivia.qa.metrics import QA_CALLS, QA_LATENCY
from trivia.qa.prompts import build_messages

__all__ = [
    "DEFAULT_EXTRA_BODY",
    "EndpointStats",
    "QAClient",
    "aiohttp_transport",
    "parse_endpoints",
]

# Qwen3 thinks before answering unless told not to; vLLM and swift pass this to the chat template.
DEFAULT_EXTRA_BODY: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": False}}

_QA_METRICS = CallMetrics(QA_CALLS, QA_LATENCY)


class QAClient(ChatClient):
    """Asks questions about tables of one or more OpenAI-compatible servers; see the module doc."""

    error_type: ClassVar[type[LLMError]] = QAError

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency_per_endpoint: int = 64,
        request_timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_base_s: float = 0.25,
        backoff_max_s: float = 8.0,
        eject_after_failures: int = 5,
        eject_for_s: float = 30.0,
        max_tokens: int = 64,
        extra_body: dict[str, Any] | None = None,
        retry_after_max_s: float = 30.0,
        prime_prefix: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`extra_body` is merged into every chat request (default: Qwen3 without thinking).

        `prime_prefix`: `answer_many` sends the first question alone and the rest once it is
        answered, so a server with a prefix cache computes the table's prefix once instead of
        once per concurrent question (worth it on vLLM; costs one extra round trip per table).
        `transport`: any httpx transport instead of the aiohttp-backed one (`aiohttp_transport`).
        """
        super().__init__(
            endpoints,
            model=model,
            api_key=api_key,
            max_concurrency_per_endpoint=max_concurrency_per_endpoint,
            request_timeout_s=request_timeout_s,
            max_retries=max_retries,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            eject_after_failures=eject_after_failures,
            eject_for_s=eject_for_s,
            extra_body=DEFAULT_EXTRA_BODY if extra_body is None else extra_body,
            retry_after_max_s=retry_after_max_s,
            transport=transport,
            metrics=_QA_METRICS,
            name="QA",
        )
        self._max_tokens = max_tokens
        self._prime_prefix = prime_prefix

    async def answer(self, table: str, question: str, *, deadline: float | None = None) -> str:
        """The raw completion text for `question` about `table`; raises QAError."""
        reply = await self.chat(
            build_messages(table, question),
            temperature=0,
            max_tokens=self._max_tokens,
            deadline=deadline,
        )
        return reply.text

    async def answer_many(
        self, table: str, questions: Sequence[str], *, deadline: float | None = None
    ) -> list[str | QAError]:
        """Answers to every question about one table, in order; a failed one is its QAError."""

        async def one(question: str) -> str | QAError:
            try:
                return await self.answer(table, question, deadline=deadline)
            except QAError as exc:
                return exc

        if not questions:
            return []
        if self._prime_prefix and len(questions) > 1:
            first = await one(questions[0])
            rest = await asyncio.gather(*(one(q) for q in questions[1:]))
            return [first, *rest]
        return list(await asyncio.gather(*(one(q) for q in questions)))
