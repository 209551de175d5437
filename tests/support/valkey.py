"""A valkey-server child process for tests of single modules (the stack runs its own)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from trivia.reward.redis_server import server_command, wait_for_redis


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
