"""What the gateway process holds for its lifetime: settings, Redis connections, body pool."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from trivia.reward.body_pool import BodyPool
from trivia.reward.inspector.recorder import Recorder
from trivia.settings import Settings


@dataclass
class GatewayState:
    """Settings, the async client that awaits results, the queue RQ enqueues on, the
    recorder that keeps scored requests for `/inspect`, and the pool that reads large bodies."""

    settings: Settings
    redis: AsyncRedis
    queue: Queue
    recorder: Recorder
    bodies: BodyPool


async def get_state(request: Request) -> GatewayState:
    """FastAPI dependency: the app's `GatewayState`."""
    return request.app.state.gateway
