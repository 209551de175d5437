"""The Docker daemon, the local base image and the wheelhouses the image tests share.

Session-scoped: the reward stack test and the gpu-profile rehearsal use one daemon, one base
and one build cache. A wheelhouse is served on a fixed loopback port when it is free, because
the address is a build argument and a new one would invalidate the images' install layers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from .tools import IN_CI, REPO, debian_tool, run, unavailable

CACHE = Path(os.environ.get("TRIVIA_CACHE_DIR", "/var/cache/trivia-deploy"))
WHEELHOUSE_PORTS = {"reward": 18711, "trainer": 18712}
# The build cache kept between runs: the trainer image's layers (torch, its CUDA libraries,
# ms-swift, DeepSpeed) are most of it. A CI machine runs the suite once and reuses nothing: it
# keeps none, so that the tests after the image builds get their disk back.
BUILD_CACHE_KEEP_BYTES = 0 if IN_CI else 24 << 30


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def docker_socket() -> Iterator[str]:
    if os.geteuid() != 0:
        unavailable("the test's Docker daemon runs as root")
    debian_tool("dockerd", "docker.io")
    script = str(REPO / "scripts/docker-daemon.sh")
    already = run([script, "status"]).returncode == 0
    started = run([script, "start"], timeout=120)
    if started.returncode:
        unavailable(f"dockerd cannot run on this machine: {started.stderr.strip()}")
    yield started.stdout.strip().removeprefix("DOCKER_HOST=unix://")
    if not already:
        stopped = run([script, "stop"], timeout=120)
        assert stopped.returncode == 0, stopped.stderr


@pytest.fixture(scope="session")
def docker_env(docker_socket: str) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": f"unix://{docker_socket}"}


@pytest.fixture(scope="session")
def base_image(docker_env: dict[str, str]) -> str:
    debian_tool("debootstrap", "debootstrap")
    built = run([str(REPO / "scripts/build-base-image.sh")], env=docker_env, timeout=900)
    if built.returncode:
        unavailable(f"no local base image (debootstrap needs Debian's mirror): {built.stderr}")
    return built.stdout.strip()


@pytest.fixture(scope="session")
def base_python(base_image: str, docker_env: dict[str, str]) -> str:
    """The base image's Python version (wheels are chosen for it)."""
    version = run(
        ["docker", "run", "--rm", "--network", "host", base_image, "python3", "-c",
         "import platform; print(platform.python_version())"],
        env=docker_env,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    return version.stdout.strip()


def cached_wheelhouse(
    name: str, requirements: list[str], python: str, build: Callable[[Path], object]
) -> Path:
    """`build(directory)` once per set of requirements; other sets of the same name removed."""
    key = hashlib.sha256("\n".join([python, *requirements]).encode()).hexdigest()[:16]
    directory = CACHE / f"{name}-{key}"
    if not (directory / ".complete").exists():
        for stale in CACHE.glob(f"{name}-*"):
            shutil.rmtree(stale)
        build(directory)
        (directory / ".complete").touch()
    return directory


def engine_client(docker_socket: str, timeout: float = 120) -> httpx.Client:
    """The Docker Engine API on the daemon's socket."""
    transport = httpx.HTTPTransport(uds=docker_socket)
    return httpx.Client(transport=transport, base_url="http://docker", timeout=timeout)


# Deleting the trainer's build cache (gigabytes of small files) takes minutes on a busy disk.
PRUNE_TIMEOUT_S = 1200


def prune_build_cache(engine: httpx.Client) -> None:
    """Drop untagged images and the build cache beyond what the next run reuses."""
    dangling = {"filters": json.dumps({"dangling": ["true"]})}
    engine.post("/images/prune", params=dangling, timeout=PRUNE_TIMEOUT_S)
    keep = {"keep-storage": str(BUILD_CACHE_KEEP_BYTES)}
    engine.post("/build/prune", params=keep, timeout=PRUNE_TIMEOUT_S)


def require_free_disk(engine: httpx.Client, needed_bytes: int, what: str) -> None:
    """Refuse `what` up front when the daemon's disk cannot hold it: a build that fills the disk
    fails every test after it with ENOSPC, instead of this one with the reason."""
    root = engine.get("/info").json()["DockerRootDir"]
    free = shutil.disk_usage(root).free
    if free < needed_bytes:
        unavailable(
            f"{what} needs about {needed_bytes / 2**30:.0f} GiB free on the disk of {root}; "
            f"{free / 2**30:.1f} GiB are free"
        )


class ComposeProject(Protocol):
    """A compose project under test: its `docker compose` and the daemon's Engine API."""

    def compose(self, *args: str, timeout: float = ...) -> Any: ...

    def engine(self) -> httpx.Client: ...


@contextmanager
def brought_down(
    project: ComposeProject, *, stop_timeout_s: int, leftovers: Callable[[], list[Any]]
) -> Iterator[None]:
    """Run the body (bringing `project` up, using it), then `down --volumes` whatever happened:
    containers get `stop_timeout_s` to stop, `leftovers()` must be empty afterwards, and the
    build cache is pruned to what the next run reuses."""
    try:
        yield
    finally:
        down = project.compose(
            "down", "--volumes", "--remove-orphans", "--timeout", str(stop_timeout_s)
        )
        assert down.returncode == 0, down.stderr
        assert leftovers() == [], "left after `down --volumes`"
        with project.engine() as engine:
            prune_build_cache(engine)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="session")
def serve_wheelhouse() -> Iterator[Callable[[str, Path], str]]:
    """Serve a folder over HTTP on 127.0.0.1; the URL comes back."""
    servers: list[ThreadingHTTPServer] = []

    def serve(name: str, directory: Path) -> str:
        port = WHEELHOUSE_PORTS[name] if _port_free(WHEELHOUSE_PORTS[name]) else 0
        handler = partial(_QuietHandler, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def wheelhouse_url(base_python: str, serve_wheelhouse: Callable[[str, Path], str]) -> str:
    """The reward image's wheels for the base's Python, served over HTTP on 127.0.0.1."""
    from .wheelhouse import build_wheelhouse, reward_requirements

    requirements = reward_requirements(REPO / "pyproject.toml")
    directory = cached_wheelhouse(
        "wheelhouse",
        requirements,
        base_python,
        lambda d: build_wheelhouse(requirements, d, base_python),
    )
    return serve_wheelhouse("reward", directory)
