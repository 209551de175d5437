"""`trivia stack up`: the whole reward service on one machine, supervised.

Starts, in order, a valkey-server with AOF in the data directory (unless a Redis URL is given),
the lookup answerer (if asked), N workers and the gateway; waits until the gateway is ready;
restarts any child that exits (a worker that lost Redis, a killed server); and on stop ends them
in reverse order, each child's whole process group, SIGTERM first and SIGKILL after a grace
period. Children also get SIGKILL if the supervisor itself dies (Linux parent-death signal), so
nothing is left behind.

Ports, from the gateway's port P: answerer P+1, valkey P+2, worker i's metrics P+10+i.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from trivia.reward.redis_server import ensure_password, redis_url, server_command, wait_for_redis
from trivia.settings import DEFAULTS, Settings

_PR_SET_PDEATHSIG = 1


def trivia_command() -> list[str]:
    """How to run the `trivia` command with this interpreter."""
    script = Path(sys.executable).with_name("trivia")
    if script.exists():
        return [str(script)]
    found = shutil.which("trivia")
    if found:
        return [found]
    return [sys.executable, "-c", "from trivia.cli import main; main()"]


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: own process group, SIGKILL when the parent dies.
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class StackConfig:
    """What `trivia stack up` starts."""

    port: int = DEFAULTS.port
    host: str = DEFAULTS.host
    workers: int = DEFAULTS.workers
    qa_urls: list[str] = field(default_factory=list)
    qa_lookup: bool = False
    redis_url: str | None = None
    data_dir: Path = DEFAULTS.data_dir
    env: dict[str, str] = field(default_factory=dict)

    @property
    def qa_port(self) -> int:
        return self.port + 1

    @property
    def redis_port(self) -> int:
        return self.port + 2

    def worker_metrics_port(self, index: int) -> int:
        return self.port + 10 + index


@dataclass
class Child:
    """One supervised process: how to start it and, while it runs, its Popen."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    retry_at: float = 0.0
    backoff_s: float = 0.0
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=_die_with_parent,  # only setsid and prctl
        )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, grace_s: float) -> None:
        """SIGTERM the child's process group, SIGKILL it after `grace_s`."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(grace_s)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, signal.SIGKILL)
                    process.wait()
            # Whatever the child left in its group (a work-horse) goes with it.
            _signal_group(process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def _environment(changes: dict[str, str]) -> Iterator[None]:
    """`os.environ` with `changes` applied for the block (what the children see)."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Stack:
    """The supervised processes of one local reward service."""

    def __init__(self, config: StackConfig, *, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.data_dir = Path(config.data_dir).resolve()
        self.children: list[Child] = []
        self._redis: Child | None = None

    # --- URLs ----------------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def redis_url(self) -> str:
        """Where the children find Redis; the local server's URL carries its password."""
        if self.config.redis_url is not None:
            return self.config.redis_url
        return redis_url(self.config.redis_port, ensure_password(self.data_dir / "valkey"))

    @property
    def qa_urls(self) -> list[str]:
        if self.config.qa_lookup:
            return [f"http://{self.config.host}:{self.config.qa_port}/v1"]
        return list(self.config.qa_urls)

    def worker_metrics_urls(self) -> list[str]:
        c = self.config
        return [f"http://{c.host}:{c.worker_metrics_port(i)}/metrics" for i in range(c.workers)]

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self, ready_timeout_s: float = 60.0) -> None:
        """Start every child and wait until the gateway reports ready; stops all on failure."""
        if not self.qa_urls:
            raise ValueError("give a QA endpoint (--qa-url) or the lookup answerer (--qa lookup)")
        try:
            self._start_all(time.monotonic() + ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def ports(self) -> list[int]:
        """Every port this stack will listen on."""
        c = self.config
        ports = [c.port, *(c.worker_metrics_port(i) for i in range(c.workers))]
        if c.redis_url is None:
            ports.append(c.redis_port)
        if c.qa_lookup:
            ports.append(c.qa_port)
        return ports

    def _start_all(self, deadline: float) -> None:
        c = self.config
        busy = [port for port in self.ports() if not _port_free(c.host, port)]
        if busy:
            raise RuntimeError(f"ports already in use: {busy} (choose another --port)")
        # The Redis URL (with the local server's password) travels by environment only.
        env = {**os.environ, **c.env, "PYTHONUNBUFFERED": "1", "TRIVIA_REDIS_URL": self.redis_url}
        trivia = trivia_command()
        logs = self.data_dir / "logs"
        if c.redis_url is None:
            valkey_dir = self.data_dir / "valkey"
            self._redis = self._launch(
                "valkey",
                server_command(c.redis_port, valkey_dir, password=ensure_password(valkey_dir)),
                env,
                logs,
            )
            self._wait_http_or_redis(self._redis, deadline)
        if c.qa_lookup:
            qa = self._launch(
                "qa-lookup",
                [*trivia, "qa", "serve", "--host", c.host, "--port", str(c.qa_port)],
                env,
                logs,
            )  # fmt: skip
            self._wait_http(qa, f"{self.qa_urls[0]}/models", deadline)
        for i in range(c.workers):
            argv = [*trivia, "worker", "--metrics-port", str(c.worker_metrics_port(i))]
            for url in self.qa_urls:
                argv += ["--qa-url", url]
            self._launch(f"worker-{i}", argv, env, logs)
        gateway = self._launch(
            "gateway",
            [*trivia, "gateway", "--host", c.host, "--port", str(c.port)],
            env,
            logs,
        )  # fmt: skip
        self._wait_http(gateway, f"{self.gateway_url}/readyz", deadline)

    def _launch(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> Child:
        if name == "valkey":
            (self.data_dir / "valkey").mkdir(parents=True, exist_ok=True)
        child = Child(name=name, argv=argv, log_path=logs / f"{name}.log", env=env)
        child.start()
        self.children.append(child)
        return child

    def _wait_http(self, child: Child, url: str, deadline: float) -> None:
        with httpx.Client(timeout=2.0) as client:
            while True:
                if child.exited():
                    raise RuntimeError(f"{child.name} exited; see {child.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{child.name} not ready at {url}; see {child.log_path}")
                time.sleep(0.1)

    def _wait_http_or_redis(self, child: Child, deadline: float) -> None:
        def exited() -> str | None:
            return f"{child.name} exited; see {child.log_path}" if child.exited() else None

        try:
            wait_for_redis(self.redis_url, deadline, exited=exited)
        except TimeoutError as exc:
            raise TimeoutError(f"{child.name} not ready; see {child.log_path}") from exc

    def describe(self) -> list[str]:
        """The URLs of the running stack, one per line."""
        lines = [
            f"gateway  {self.gateway_url}  (POST /v1/rewards, /docs, /readyz, /metrics)",
            f"inspect  {self.gateway_url}/inspect  (the scored requests, in a browser)",
            f"redis    {_without_password(self.redis_url)}",
            *(f"qa       {url}" for url in self.qa_urls),
            *(f"worker-{i} {url}" for i, url in enumerate(self.worker_metrics_urls())),
            f"logs     {self.data_dir / 'logs'}",
        ]
        return lines

    def check(self) -> None:
        """Restart every child that has exited (called periodically by `supervise`).

        A child that ran for a while restarts at once; one that keeps dying at start (say, a
        worker while Redis is down) waits a little longer each time, up to 5 s.
        """
        now = time.monotonic()
        for child in self.children:
            if not child.exited():
                continue
            if child.retry_at == 0.0:
                quick = now - child.started_at < 5.0
                child.backoff_s = min(max(child.backoff_s * 2, 0.25), 5.0) if quick else 0.0
                child.retry_at = now + child.backoff_s
                code = child.process.returncode if child.process is not None else None
                self.say(f"{child.name} exited with {code}; restarting in {child.backoff_s:g} s")
            if now >= child.retry_at:
                child.retry_at = 0.0
                child.start()

    def supervise(self, should_stop: Callable[[], bool], interval_s: float = 0.2) -> None:
        """Keep children running until `should_stop()` is true."""
        while not should_stop():
            self.check()
            time.sleep(interval_s)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop every child in reverse start order (gateway first, Redis last).

        The gateway gets its drain time (`shutdown_grace_s`) and a little more before SIGKILL,
        so the requests in flight finish while the workers behind it still run.
        """
        for child in reversed(self.children):
            child.stop(self._gateway_grace_s() if child.name == "gateway" else grace_s)
        self.children.clear()

    def _gateway_grace_s(self) -> float:
        env = {k: v for k, v in self.config.env.items() if k.startswith("TRIVIA_")}
        with _environment(env):
            return Settings().drain_s + 5.0

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
