"""What a first `docker compose --profile gpu up` depends on: start order, volumes, stopping.

Read from `docker compose config`, as Compose resolves the files. The rehearsal
(test_gpu_profile_rehearsal.py) runs the same properties for real; these say why it would fail.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from trivia.settings import TRAINER_STOP_GRACE_S

from .compose_files import COMPOSE, HOST_NETWORK, compose_env, config
from .tools import REPO

# What a health probe needs beyond its own process and the services it `depends_on` (those are
# healthy before it starts): the gateway's readiness counts registered workers.
PROBE_NEEDS = {("gateway", "/readyz"): {"worker"}}
# The paper's step: 64 images x 8 generations.
PAPER_GLOBAL_BATCH = 512


def _seconds(duration: str) -> float:
    """A Compose duration (`1m30s`, `20m`, `10s`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def _tolerance(service: dict[str, Any]) -> float:
    """How long after its start a service may take to become healthy before it is unhealthy."""
    check = service["healthcheck"]
    return _seconds(check.get("start_period", "0s")) + _seconds(check.get("interval", "30s")) * int(
        check.get("retries", 3)
    )


def _probe_path(service: dict[str, Any]) -> str:
    test = " ".join(service["healthcheck"]["test"])
    url = service.get("environment", {}).get("HEALTHCHECK_URL", "")
    found = re.search(r"https?://[^/\s']+(/[\w/.-]*)", url or test)
    return found.group(1) if found else ""


def _startup_times(services: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """(started, healthy) of each service, in seconds after `up`, in the worst case.

    A service starts once every dependency is healthy and is healthy at the latest when its
    slowest declared load (start_period) has passed and whatever its probe needs is healthy.
    """
    times: dict[str, tuple[float, float]] = {}

    def visit(name: str, path: tuple[str, ...]) -> tuple[float, float]:
        assert name not in path, f"dependency cycle: {path}"
        if name in times:
            return times[name]
        service = services[name]
        deps = [d for d in service.get("depends_on", {}) if d in services]
        started = max((visit(d, (*path, name))[1] for d in deps), default=0.0)
        load = _seconds(service.get("healthcheck", {}).get("start_period", "0s"))
        healthy = started + load
        for need in PROBE_NEEDS.get((name, _probe_path(service)), set()):
            healthy = max(healthy, visit(need, (*path, name))[1])
        times[name] = (started, healthy)
        return times[name]

    for name in services:
        visit(name, ())
    return times


@pytest.mark.parametrize(
    "files", [[COMPOSE], [COMPOSE, HOST_NETWORK]], ids=["bridge", "host-network"]
)
def test_no_service_others_wait_on_can_be_marked_unhealthy_while_the_qa_model_loads(files):
    """Compose fails a dependent as soon as its dependency is unhealthy: it does not wait."""
    services = config(files, ["gpu"])["services"]
    times = _startup_times(services)
    assert times["qa"][1] >= 20 * 60  # the vLLM load is in the model
    waited_on = {d for s in services.values() for d in s.get("depends_on", {}) if d in services}
    assert {"gateway", "worker", "redis"} <= waited_on
    for name in waited_on:
        started, healthy = times[name]
        assert healthy - started <= _tolerance(services[name]), (
            f"{name} needs {healthy - started:.0f} s to become healthy after it starts, "
            f"but is marked unhealthy after {_tolerance(services[name]):.0f} s"
        )


def test_the_trainer_starts_only_once_a_worker_can_score():
    services = config([COMPOSE], ["gpu"])["services"]
    trainer = services["trainer"]["depends_on"]
    assert trainer["worker"]["condition"] == "service_healthy"
    assert trainer["gateway"]["condition"] == "service_healthy"
    times = _startup_times(services)
    assert times["trainer"][0] >= times["qa"][1]  # after the QA service has loaded


def _final_user(dockerfile: str) -> str:
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    return users[-1].split(":")[0] if users else "0"


def _owned_dirs(dockerfile: str) -> set[str]:
    """Folders the image creates and hands to its user (`mkdir -p ... && chown ...`)."""
    text = dockerfile.replace("\\\n", " ")
    made = {d for line in re.findall(r"mkdir -p ([^&\n]+)", text) for d in line.split()}
    owned = {d for line in re.findall(r"chown \S+ ([^&\n]+)", text) for d in line.split()}
    return made & owned


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_named_volumes_start_writable_by_the_user_that_writes_them(profile):
    """An empty named volume takes the owner of the image's folder; a missing folder is root's."""
    services = config([COMPOSE], [profile])["services"]
    users: dict[str, set[str]] = {}
    for name, service in services.items():
        build = service.get("build")
        dockerfile = (REPO / build["dockerfile"]).read_text("utf-8") if build else None
        for mount in service.get("volumes", []):
            if mount["type"] != "volume":
                continue
            user = _final_user(dockerfile) if dockerfile else "image"
            users.setdefault(mount["source"], set()).add(user)
            if dockerfile and user not in {"0", "root"} and not mount.get("read_only"):
                assert mount["target"] in _owned_dirs(dockerfile), (
                    f"{name}: {mount['target']} is not created and chowned in {build['dockerfile']}"
                )
    for volume, writers in users.items():
        assert len(writers) == 1, f"volume {volume} is shared by users {writers}"


def test_the_trainer_image_runs_as_the_user_its_volumes_are_made_for():
    dockerfile = (REPO / "docker/trainer/Dockerfile").read_text("utf-8")
    assert _final_user(dockerfile) == "10001"
    assert {"/workspace/runs", "/models"} <= _owned_dirs(dockerfile)
    # The launch config's output_dir is inside the runs volume (WORKDIR /workspace).
    assert "WORKDIR /workspace\n" in dockerfile
    launch = (REPO / "configs/trivia-3b.yaml").read_text("utf-8")
    assert re.search(r"^  output_dir: runs/", launch, flags=re.MULTILINE)


def test_stopping_the_trainer_leaves_time_for_a_checkpoint():
    trainer = config([COMPOSE], ["gpu"])["services"]["trainer"]
    assert _seconds(trainer["stop_grace_period"]) == TRAINER_STOP_GRACE_S  # as on Kubernetes
    assert "init" not in trainer  # `trivia train` itself turns SIGTERM into a clean stop


def test_host_network_vllm_listens_on_loopback_at_the_chosen_port():
    env = compose_env(TRIVIA_QA_PORT="18001")
    bridge = config([COMPOSE], ["gpu"])["services"]["qa"]
    host = config([COMPOSE, HOST_NETWORK], ["gpu"], env)["services"]["qa"]
    command = host["command"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "18001"
    assert "http://127.0.0.1:18001/health" in " ".join(host["healthcheck"]["test"])
    # Otherwise the same server as on a bridge network.
    strip = {"--host", "--port"}

    def flags(argv: list[str]) -> list[str]:
        return [a for i, a in enumerate(argv) if a not in strip and argv[i - 1] not in strip]

    assert flags(command) == flags(bridge["command"])
    workers = config([COMPOSE, HOST_NETWORK], ["gpu"], env)["services"]["worker"]
    assert workers["environment"]["TRIVIA_QA_URLS"] == "http://127.0.0.1:18001/v1"


def _global_batch(services: dict[str, Any]) -> int:
    import yaml

    launch = yaml.safe_load((REPO / "configs/trivia-3b.yaml").read_text("utf-8"))["swift"]
    processes = int(services["trainer"]["environment"]["NPROC_PER_NODE"])
    return processes * launch["per_device_train_batch_size"] * launch["gradient_accumulation_steps"]


def test_the_gpu_profile_trains_on_seven_gpus_and_says_so():
    services = config([COMPOSE], ["gpu"])["services"]
    (qa,) = services["qa"]["deploy"]["resources"]["reservations"]["devices"]
    (trainer,) = services["trainer"]["deploy"]["resources"]["reservations"]["devices"]
    assert qa["device_ids"] == ["7"] and trainer["device_ids"] == ["0,1,2,3,4,5,6"]
    assert _global_batch(services) == 448
    guide = (REPO / "docs/deploy.md").read_text("utf-8")
    assert "448" in guide and "512" in guide and "--profile train" in guide


def test_the_train_profile_runs_the_papers_layout_with_qa_elsewhere():
    env = compose_env(
        TRIVIA_QA_URLS="http://qa.example:8001/v1",
        TRIVIA_TRAINER_GPUS="0,1,2,3,4,5,6,7",
        TRIVIA_TRAINER_NPROC="8",
        TRIVIA_TRAINER_CUDA_VISIBLE_DEVICES="0,1,2,3,4,5,6,7",
    )
    services = config([COMPOSE], ["train"], env)["services"]
    assert "qa" not in services and "trainer" in services
    assert services["worker"]["environment"]["TRIVIA_QA_URLS"] == "http://qa.example:8001/v1"
    assert _global_batch(services) == PAPER_GLOBAL_BATCH
