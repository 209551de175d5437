"""Connections of the gateway and the workers to Redis, authenticated.

The password comes from the URL (`trivia stack up` passes its generated one that way, by
environment) or from `TRIVIA_REDIS_PASSWORD_FILE`, a file: Compose mounts its secret at
/run/secrets/redis_password, Kubernetes its Secret `trivia-redis-password`. A file keeps the
password out of the container's environment, so `docker inspect` and `kubectl describe` do not
show it. The file is read when a connection is made; a missing or empty file is an error that
names it, not a silent attempt without a password.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from trivia.settings import Settings


class RedisPasswordError(RuntimeError):
    """`TRIVIA_REDIS_PASSWORD_FILE` names a file that cannot give a password."""


def redis_password(settings: Settings) -> str | None:
    """The password in `settings.redis_password_file` (surrounding whitespace dropped)."""
    path = settings.redis_password_file
    if path is None:
        return None
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RedisPasswordError(
            f"cannot read the Redis password from {path} (TRIVIA_REDIS_PASSWORD_FILE): "
            f"{exc.strerror or exc}"
        ) from exc
    if not password:
        raise RedisPasswordError(
            f"the Redis password file {path} (TRIVIA_REDIS_PASSWORD_FILE) is empty"
        )
    return password


def connect(settings: Settings, **options: Any) -> Redis:
    """A client of `settings.redis_url` with its password; `options` go to `Redis`."""
    return Redis.from_url(settings.redis_url, password=redis_password(settings), **options)


def connect_async(settings: Settings, **options: Any) -> AsyncRedis:
    """The asyncio client of `settings.redis_url` with its password."""
    return AsyncRedis.from_url(settings.redis_url, password=redis_password(settings), **options)
