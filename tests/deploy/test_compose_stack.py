"""The reward stack really comes up with `docker compose`, on a machine without registries.

Starts the project's own Docker daemon (scripts/docker-daemon.sh: Debian's dockerd as root,
host networking), builds the reward image from compose.yaml with a local Debian base
(scripts/build-base-image.sh) and a wheelhouse served from this machine, brings up the `cpu`
profile (Redis, gateway, two workers, the lookup answerer) with compose.host-network.yaml,
scores requests through the gateway, kills a worker mid-request, and takes it all down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from trivia.dataset.qa_from_table import qa_from_table
from trivia.ports import free_port

from .compose_files import COMPOSE, HOST_NETWORK, OFFLINE, offline_env
from .conftest import brought_down, engine_client
from .tools import REPO, compose_binary, run

pytestmark = pytest.mark.slow

PROJECT = "trivia-deploy-test"
TOKEN = "deploy-test-token"
SERVICES = ["redis", "gateway", "worker", "worker-2", "qa-lookup"]
QUEUE = "trivia-rewards"


@dataclass
class Stack:
    docker_socket: str
    env: dict[str, str]
    gateway: str
    redis_port: int
    metrics: dict[str, str]  # service -> /metrics URL

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [compose_binary(), "-p", PROJECT, "--profile", "cpu"]
        for file in (COMPOSE, HOST_NETWORK, OFFLINE):
            argv += ["-f", str(file)]
        return run([*argv, *args], env=self.env, cwd=REPO, timeout=timeout)

    def engine(self) -> httpx.Client:
        """The Docker Engine API on the daemon's socket."""
        return engine_client(self.docker_socket)

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        labels = [f"com.docker.compose.project={PROJECT}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        filters = json.dumps({"label": labels})
        with self.engine() as engine:
            response = engine.get("/containers/json", params={"all": "1", "filters": filters})
        response.raise_for_status()
        return response.json()

    def pid(self, service: str) -> int:
        (container,) = self.containers(service)
        with self.engine() as engine:
            state = engine.get(f"/containers/{container['Id']}/json").json()["State"]
        assert state["Running"], state
        return int(state["Pid"])

    def score(self, items: list[dict[str, Any]], token: str | None = TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(
            f"{self.gateway}/v1/rewards", json={"items": items}, headers=headers, timeout=150
        )


@pytest.fixture(scope="module")
def stack(docker_socket: str, base_image: str, wheelhouse_url: str) -> Iterator[Stack]:
    ports = {
        name: free_port()
        for name in ("GATEWAY", "QA", "REDIS", "WORKER_METRICS", "WORKER_2_METRICS")
    }
    env = offline_env(
        docker_socket,
        base_image,
        wheelhouse_url,
        TOKEN,
        **{f"TRIVIA_{name}_PORT": str(port) for name, port in ports.items()},
    )
    stack = Stack(
        docker_socket=docker_socket,
        env=env,
        gateway=f"http://127.0.0.1:{ports['GATEWAY']}",
        redis_port=ports["REDIS"],
        metrics={
            "gateway": f"http://127.0.0.1:{ports['GATEWAY']}/metrics",
            "worker": f"http://127.0.0.1:{ports['WORKER_METRICS']}/metrics",
            "worker-2": f"http://127.0.0.1:{ports['WORKER_2_METRICS']}/metrics",
            "qa-lookup": f"http://127.0.0.1:{ports['QA']}/metrics",
        },
    )
    # Earlier builds' layers stay in the daemon's data between runs as the build cache.
    with brought_down(stack, stop_timeout_s=10, leftovers=stack.containers):
        built = stack.compose("build", "gateway", timeout=900)
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
        up = stack.compose(
            "up", "--detach", "--no-build", "--wait", "--wait-timeout", "180", *SERVICES,
            timeout=300,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr + stack.compose("logs", "--tail", "30").stdout
        yield stack


def _tables(count: int) -> list[dict[str, Any]]:
    items = []
    for i in range(count):
        html = (
            "<table><tr><td>Name</td><td>Score</td><td>Team</td></tr>"
            f"<tr><td>P{i}</td><td>{7 * i + 3} pts</td><td>T{i % 3}</td></tr>"
            f"<tr><td>Q{i}</td><td>{5 * i + 1} pts</td><td>U{i % 4}</td></tr></table>"
        )
        items.append({"id": f"t{i}", "completion": html, "qa_pairs": qa_from_table(html)})
    return items


def _samples(url: str, name: str) -> list[float]:
    text = httpx.get(url, timeout=10).text
    return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]


def _wait_for_workers(stack: Stack, count: int, timeout_s: float = 60) -> None:
    """Until the gateway's gauge (refreshed every few seconds) counts `count` live workers."""
    deadline = time.monotonic() + timeout_s
    while _samples(stack.metrics["gateway"], "trivia_workers_alive") != [float(count)]:
        assert time.monotonic() < deadline, f"the gateway never saw {count} workers"
        time.sleep(0.5)


def test_the_cpu_profile_comes_up_healthy(stack: Stack) -> None:
    containers = stack.containers()
    services = {c["Labels"]["com.docker.compose.service"]: c for c in containers}
    assert set(services) == set(SERVICES)
    for name, container in services.items():
        assert container["State"] == "running", name
        assert "(healthy)" in container["Status"], (name, container["Status"])


def test_a_request_is_scored_through_the_gateway(stack: Stack) -> None:
    items = _tables(2)
    response = stack.score(items)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["id"] for r in results] == ["t0", "t1"]
    for result in results:
        assert result["valid"] and result["error"] is None
        assert result["qa_f1"] == 1.0  # the lookup answerer finds every cell
        assert len(result["answers"]) == len(items[0]["qa_pairs"])
    assert stack.score(items, token=None).status_code == 401


def test_every_service_serves_its_metrics(stack: Stack) -> None:
    stack.score(_tables(3))
    assert sum(_samples(stack.metrics["gateway"], 'trivia_requests_total{status="200"}')) >= 1
    _wait_for_workers(stack, 2)
    jobs = sum(sum(_samples(stack.metrics[w], "trivia_jobs_total")) for w in ("worker", "worker-2"))
    assert jobs >= 3
    answered = _samples(stack.metrics["qa-lookup"], 'trivia_qa_lookup_answers_total{outcome="a')
    assert sum(answered) >= 3


def test_a_request_completes_when_a_worker_is_killed_mid_job(stack: Stack) -> None:
    queue = redis.Redis(port=stack.redis_port, password=stack.env["TRIVIA_REDIS_PASSWORD"])
    answerer = stack.pid("qa-lookup")
    items = _tables(6)
    outcome: dict[str, httpx.Response] = {}
    # Freeze the answerer so that both workers hold a job when one of them dies.
    os.kill(answerer, signal.SIGSTOP)
    try:
        caller = threading.Thread(target=lambda: outcome.update(r=stack.score(items)))
        caller.start()
        deadline = time.monotonic() + 60
        while queue.zcard(f"rq:wip:{QUEUE}") < 2:
            assert time.monotonic() < deadline, "the workers never took the jobs"
            time.sleep(0.1)
        os.kill(stack.pid("worker"), signal.SIGKILL)
    finally:
        os.kill(answerer, signal.SIGCONT)
    caller.join(timeout=150)
    response = outcome["r"]
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["qa_f1"] for r in results] == [1.0] * len(items)
    assert all(r["error"] is None for r in results)
    # The killed worker is restarted by its restart policy and registers again.
    _wait_for_workers(stack, 2)
