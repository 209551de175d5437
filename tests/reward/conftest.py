"""Real processes for the reward tests, started once per session and always stopped.

- `valkey`: a valkey-server child process (AOF on) for tests of single modules;
- `stub`: the scriptable OpenAI-compatible stub (real HTTP), restartable on its port;
- `stack`: `trivia stack up` as a subprocess (valkey, 2 workers, gateway) using the stub.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from tests.support.openai_stub import StubServer, openai_stub
from tests.support.valkey import RedisServer

from trivia.ports import free_port_block
from trivia.reward.redis_server import ensure_password
from trivia.reward.stack import trivia_command

TOKEN = "reward-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE_S = 10
MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS = 64
MAX_QUESTIONS_PER_ITEM = 32
MAX_QUESTIONS_PER_REQUEST = 512
# Bodies from this size on are read in the gateway's body pool (one process here): the tests
# send both kinds.
LARGE_BODY_BYTES = 16 * 1024


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port_block(1), tmp_path_factory.mktemp("valkey"))
    server.start(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis(valkey: RedisServer) -> Iterator[Redis]:
    client = Redis(port=valkey.port)
    yield client
    client.close()


class Stub:
    """The session's stub server, on a fixed port so it can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self._exit: contextlib.ExitStack | None = None
        self.server: StubServer | None = None

    def start(self) -> None:
        self._exit = contextlib.ExitStack()
        self.server = self._exit.enter_context(openai_stub(port=self.port))

    def stop(self) -> None:
        if self._exit is not None:
            self._exit.close()
            self._exit = None
            self.server = None

    def healthy(self) -> StubServer:
        """Running, answering with the lookup answerer, counters zeroed."""
        if self.server is None:
            self.start()
        assert self.server is not None
        self.server.configure(failure="none", fail_first=None, latency_s=0.0, answer=None)
        self.server.reset()
        return self.server


@pytest.fixture(scope="session")
def stub_process() -> Iterator[Stub]:
    stub = Stub()
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def stub(stub_process: Stub) -> Iterator[StubServer]:
    """The stub, healthy at the start and again at the end of the test."""
    yield stub_process.healthy()
    stub_process.healthy()


@dataclass
class RunningStack:
    url: str
    redis_url: str
    port: int
    process: subprocess.Popen[str]
    data_dir: Path
    output: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("headers", AUTH)
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.url, **kwargs)

    def redis(self) -> Redis:
        return Redis.from_url(self.redis_url)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return
                time.sleep(0.1)
        raise TimeoutError("stack not ready")

    def logs(self) -> str:
        parts = [f"--- stdout\n{''.join(self.output)}"]
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@pytest.fixture(scope="session")
def stack(stub_process: Stub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    port = free_port_block(16)
    data_dir = tmp_path_factory.mktemp("stack")
    env = {
        **os.environ,
        "TRIVIA_API_TOKEN": TOKEN,
        "TRIVIA_REQUEST_DEADLINE_S": str(DEADLINE_S),
        "TRIVIA_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "TRIVIA_MAX_ITEMS": str(MAX_ITEMS),
        "TRIVIA_MAX_QUESTIONS_PER_ITEM": str(MAX_QUESTIONS_PER_ITEM),
        "TRIVIA_MAX_QUESTIONS_PER_REQUEST": str(MAX_QUESTIONS_PER_REQUEST),
        "TRIVIA_BODY_PARSE_MIN_BYTES": str(LARGE_BODY_BYTES),
        "TRIVIA_BODY_PARSE_PROCESSES": "1",
        "TRIVIA_QA_REQUEST_TIMEOUT_S": "1",
        "TRIVIA_QA_MAX_RETRIES": "1",
        "TRIVIA_QA_BACKOFF_BASE_S": "0.05",
        "TRIVIA_QA_EJECT_AFTER_FAILURES": "1000",  # each test sees the failure it sets up
        "TRIVIA_ENQUEUE_RETRY_S": "5",
    }
    argv = [*trivia_command(), "stack", "up", "--port", str(port), "--workers", "2",
            "--qa-url", stub_process.url, "--data-dir", str(data_dir)]  # fmt: skip
    with (data_dir / "stack.err").open("w") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    password = ensure_password(data_dir / "valkey")  # the stack reuses what it finds there
    running = RunningStack(
        url=f"http://127.0.0.1:{port}",
        redis_url=f"redis://:{password}@127.0.0.1:{port + 2}/0",
        port=port,
        process=process,
        data_dir=data_dir,
    )
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.output.append(line)
            if line.startswith("ready:"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not ready.wait(90):
            raise RuntimeError(f"stack did not start\n{running.logs()}")
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(5)
        leftovers = processes_mentioning(f"127.0.0.1:{port + 2}") + processes_mentioning(
            f"--port {port + 2}"
        )
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"processes left behind: {leftovers}"


def unique(text: str) -> str:
    """`text` with a tag that no other test (or the answer cache) has seen."""
    return f"{text} [{uuid.uuid4().hex[:8]}]"


@pytest.fixture
def free_ports() -> Any:
    """`free_ports(n)`: the first of n consecutive free ports."""
    return free_port_block
