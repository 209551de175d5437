"""What the gateway process holds for its lifetime: settings and its Redis connections."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from trivia.reward.inspector.recorder import Recorder
from trivia.settings import Settings


@dataclass
class GatewayState:
    """Settings, the async client that awaits results, the queue RQ enqueues on, and the
    recorder that keeps scored requests for `/inspect`."""

    settings: Settings
    redis: AsyncRedis
    queue: Queue
    recorder: Recorder


async def get_state(request: Request) -> GatewayState:
    """FastAPI dependency: the app's `GatewayState`."""
    return request.app.state.gateway
