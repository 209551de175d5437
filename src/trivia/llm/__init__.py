"""Chat clients for OpenAI-compatible servers, shared by the answering and the VLM clients.

    errors      LLMError                                  (what a failed call raises)
    metrics     CallMetrics, LLM_METRICS                  (Prometheus, one sample per attempt)
    endpoints   parse_endpoints, EndpointStats            (URLs, per-endpoint state)
    transport   aiohttp_transport                         (httpx on aiohttp's pool)
    client      ChatClient, ChatReply                     (balancing, retries, ejection, deadlines)

The client is imported on first use, so `LLMError` works without the transport's packages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trivia.llm.errors import LLMError

if TYPE_CHECKING:
    from trivia.llm.client import ChatClient, ChatReply
    from trivia.llm.endpoints import EndpointStats

__all__ = ["ChatClient", "ChatReply", "EndpointStats", "LLMError"]


def __getattr__(name: str) -> Any:
    if name in ("ChatClient", "ChatReply"):
        from trivia.llm import client

        return getattr(client, name)
    if name == "EndpointStats":
        from trivia.llm import endpoints

        return endpoints.EndpointStats
    raise AttributeError(f"module 'trivia.llm' has no attribute {name!r}")
