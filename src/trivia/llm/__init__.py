"""Chat clients for OpenAI-compatible servers, shared by the answering and the VLM clients.

    errors      LLMError, QAError                         (the one error tree)
    metrics     CallMetrics, LLM_METRICS                  (Prometheus, one sample per attempt)
    endpoints   EndpointPool, EndpointStats               (choosing among endpoints)
    affinity    affinity_key, owner, route                (a table's questions to one endpoint)
    discovery   resolve_replicas                          (one endpoint per replica of a name)
    client      ChatClient, ChatReply                     (the OpenAI SDK, retries by stamina)

The client is imported on first use, so the errors work without the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trivia.llm.errors import LLMError, QAError

if TYPE_CHECKING:
    from trivia.llm.client import ChatClient, ChatReply
    from trivia.llm.endpoints import EndpointStats

__all__ = ["ChatClient", "ChatReply", "EndpointStats", "LLMError", "QAError"]


def __getattr__(name: str) -> Any:
    if name in ("ChatClient", "ChatReply"):
        from trivia.llm import client

        return getattr(client, name)
    if name == "EndpointStats":
        from trivia.llm import endpoints

        return endpoints.EndpointStats
    raise AttributeError(f"module 'trivia.llm' has no attribute {name!r}")
