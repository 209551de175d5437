"""Answering questions about tables: the prompt, the client for OpenAI-compatible servers, and a
lookup answerer that stands in for the LLM.

    prompts    PROMPT_VERSION, build_messages, parse_messages   (pure; the only prompt text)
    client     QAClient, EndpointStats                           (async, on trivia.llm's client)
    metrics    QA_METRICS, LOOKUP_ANSWERS                        (Prometheus)
    lookup     answer_question, answer_messages                  (pure heuristic)
    server     create_app                                        (the lookup answerer over HTTP)

The client is imported on first use, so the pure parts work without the `reward` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trivia.llm.errors import QAError
from trivia.qa.lookup import answer_messages, answer_question
from trivia.qa.prompts import NOT_ANSWERABLE, PROMPT_VERSION, build_messages, parse_messages

if TYPE_CHECKING:
    from trivia.llm.endpoints import EndpointStats
    from trivia.qa.client import QAClient

__all__ = [
    "NOT_ANSWERABLE",
    "PROMPT_VERSION",
    "EndpointStats",
    "QAClient",
    "QAError",
    "answer_messages",
    "answer_question",
    "build_messages",
    "parse_messages",
]


def __getattr__(name: str) -> Any:
    if name == "QAClient":
        from trivia.qa.client import QAClient

        return QAClient
    if name == "EndpointStats":
        from trivia.llm.endpoints import EndpointStats

        return EndpointStats
    raise AttributeError(f"module 'trivia.qa' has no attribute {name!r}")
