"""The lookup answerer behind an OpenAI-compatible HTTP API (FastAPI).

It lets the whole reward stack run without an LLM: `trivia qa serve`. It
speaks enough of the OpenAI protocol for `QAClient`, vLLM clients and curl: `GET /v1/models`,
`POST /v1/chat/completions` (non-streaming), plus `/health` and `/metrics`. What it answers
comes from `trivia.qa.lookup`, a heuristic, as its `/v1/models` entry says.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from trivia.qa.lookup import DESCRIPTION, answer_messages
from trivia.qa.metrics import LOOKUP_ANSWERS
from trivia.qa.prompts import NOT_ANSWERABLE
from trivia.tables import GridTooLarge

LOOKUP_MODEL = "trivia-lookup"


class TextPart(BaseModel):
    """One part of a message's content in the list form of the OpenAI protocol."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The fields this server reads; others (temperature, max_tokens, …) are accepted."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool = False


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    """Token counts, approximated as whitespace-separated words: there is no tokenizer here."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    description: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def create_app(model: str = LOOKUP_MODEL) -> FastAPI:
    """The lookup answerer's app, serving `model` as its one model name."""
    app = FastAPI(
        title="TRivia lookup answerer",
        summary="An OpenAI-compatible chat API answered by a table-lookup heuristic.",
        version="1",
    )
    created = int(time.time())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> ModelList:
        card = ModelCard(id=model, created=created, owned_by="trivia", description=DESCRIPTION)
        return ModelList(data=[card])

    # A plain function: FastAPI runs it in its thread pool, so building a large table's grid
    # never blocks the event loop (and /health with it).
    @app.post(
        "/v1/chat/completions",
        responses={422: {"description": "The table's spans expand past the grid bound."}},
    )
    def chat(request: ChatRequest) -> ChatResponse:
        if request.stream:
            raise HTTPException(400, "streaming is not supported; send stream=false")
        messages: list[dict[str, Any]] = [
            {"role": m.role, "content": m.text()} for m in request.messages
        ]
        try:
            content = answer_messages(messages)
        except GridTooLarge as exc:
            raise HTTPException(422, str(exc)) from exc
        outcome = (
            "not_answerable" if content == f"<answer>{NOT_ANSWERABLE}</answer>" else "answered"
        )
        LOOKUP_ANSWERS.labels(outcome=outcome).inc()
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        completion_tokens = len(content.split())
        return ChatResponse(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=request.model or model,
            choices=[
                Choice(
                    index=0,
                    message=AssistantMessage(content=content),
                    finish_reason="stop",
                )
            ],
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
        )

    return app
