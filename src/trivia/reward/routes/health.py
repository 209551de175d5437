"""Probes and metrics, without auth: `/healthz` (process up), `/readyz`, `/metrics`."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from trivia.reward.gateway_state import GatewayState, get_state
from trivia.reward.queue_stats import queue_stats

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    reason: str | None = None
    workers: int = 0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis unreachable or no worker"}},
)
async def readyz(state: Annotated[GatewayState, Depends(get_state)]) -> JSONResponse:
    """Ready when Redis answers and at least one worker is registered on the queue."""
    try:
        stats = await queue_stats(state.redis, state.queue)
    except (RedisError, OSError) as exc:
        body = Readiness(status="unavailable", reason=f"redis: {type(exc).__name__}")
        return JSONResponse(body.model_dump(), status_code=503)
    if stats.workers < 1:
        body = Readiness(status="unavailable", reason="no worker alive", workers=0)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Readiness(status="ready", workers=stats.workers).model_dump())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def prometheus_metrics() -> Response:
    """Prometheus text exposition of the gateway's `trivia_*` metrics."""
    body = await run_in_threadpool(generate_latest)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
