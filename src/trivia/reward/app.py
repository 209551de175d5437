"""The reward gateway: a FastAPI app built from `Settings` by `create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from rq import Queue
from rq.serializers import JSONSerializer

from trivia.reward import metrics
from trivia.reward.api import RewardRequest
from trivia.reward.auth import BearerTokenCheck, bearer_token_dependency
from trivia.reward.body_pool import BodyPool
from trivia.reward.gateway_state import GatewayState
from trivia.reward.inspector.recorder import Recorder
from trivia.reward.intake import validation_refusal
from trivia.reward.limits import BodySizeLimit
from trivia.reward.queue_stats import queue_stats
from trivia.reward.redis_client import connect, connect_async
from trivia.reward.routes import health, inspect, rewards
from trivia.settings import Settings, get_settings

_GAUGE_INTERVAL_S = 2.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app; `settings` defaults to `get_settings()` (the environment)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect_async(settings, socket_connect_timeout=2)
        sync = connect(settings, socket_connect_timeout=2, socket_timeout=10)
        queue = Queue(settings.queue_name, connection=sync, serializer=JSONSerializer)
        bodies = BodyPool(settings)
        bodies.start()
        recorder = Recorder(sync, settings, bodies)
        app.state.gateway = GatewayState(
            settings=settings, redis=redis, queue=queue, recorder=recorder, bodies=bodies
        )
        gauges = asyncio.create_task(_update_gauges(app.state.gateway))
        # What the process built to start lives as long as it does: keep it out of the garbage
        # collector, whose full passes hold the GIL for as long as they walk (~80 ms for it).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gauges
            await recorder.drain()
            await bodies.close()
            await redis.aclose()
            sync.close()

    app = FastAPI(
        title="TRivia reward service",
        version="1",
        summary="QA-F1 and TEDS rewards for recognised tables.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.api_token:
        # Outermost: a request without the token is answered before its body is read.
        app.add_middleware(BearerTokenCheck, token=settings.api_token)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    auth = [Depends(bearer_token_dependency(settings.api_token))] if settings.api_token else []
    app.include_router(rewards.router, dependencies=auth)
    app.include_router(health.router)
    app.include_router(inspect.router)
    app.add_exception_handler(inspect.SignIn, inspect.sign_in_redirect)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the request body, which the route parses itself (off the loop)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        body = RewardRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["RewardRequest"] = body
        app.openapi_schema = schema
    return app.openapi_schema


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Malformed JSON is a 400 with the parser's reason; anything else a 422 per field."""
    refused = validation_refusal(exc.errors())
    return JSONResponse(
        {"detail": jsonable_encoder(refused.detail)}, status_code=refused.status_code
    )


async def _update_gauges(state: GatewayState) -> None:
    while True:
        try:
            stats = await queue_stats(state.redis, state.queue)
        except (RedisError, OSError):
            metrics.WORKERS_ALIVE.set(0)
        else:
            metrics.QUEUE_DEPTH.set(stats.queued)
            metrics.JOBS_IN_FLIGHT.set(stats.in_flight)
            metrics.WORKERS_ALIVE.set(stats.workers)
        await asyncio.sleep(_GAUGE_INTERVAL_S)
