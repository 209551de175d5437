"""compose.yaml and its overrides: valid for the Compose spec and for Compose v2, and complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .compose_files import COMPOSE, HOST_NETWORK, OFFLINE, compose_env, config, load
from .tools import REPO, compose_binary, run, venv_tool

LONG_RUNNING = {"redis", "qa", "qa-lookup", "gateway", "worker", "trainer", "prometheus", "grafana"}
GPU_SERVICES = {"qa", "trainer"}


@pytest.mark.parametrize("path", [COMPOSE, HOST_NETWORK, OFFLINE], ids=lambda p: p.name)
def test_files_follow_the_compose_specification(path: Path, tmp_path: Path) -> None:
    # The schema validator's YAML reader does not know Compose's `!reset`: give it the data.
    plain = tmp_path / f"{path.stem}.json"
    plain.write_text(json.dumps(load(path)), encoding="utf-8")
    checker = venv_tool("check-jsonschema")
    result = run([checker, "--builtin-schema", "vendor.compose-spec", str(plain)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("files", "profiles"),
    [
        ([COMPOSE], []),
        ([COMPOSE], ["cpu"]),
        ([COMPOSE], ["gpu"]),
        ([COMPOSE, HOST_NETWORK], ["cpu", "gpu"]),
        ([COMPOSE, HOST_NETWORK, OFFLINE], ["cpu"]),
    ],
    ids=["default", "cpu", "gpu", "host-network", "offline-test"],
)
def test_compose_v2_accepts_the_project(files: list[Path], profiles: list[str]) -> None:
    argv = [compose_binary()]
    for file in files:
        argv += ["-f", str(file)]
    for profile in profiles:
        argv += ["--profile", profile]
    env = compose_env(TRIVIA_REWARD_BASE_IMAGE="trivia-base:test")
    result = run([*argv, "config", "-q"], env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "variable", ["TRIVIA_API_TOKEN", "TRIVIA_REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"]
)
def test_a_missing_secret_stops_compose_with_its_message(variable: str) -> None:
    env = compose_env()
    del env[variable]
    result = run([compose_binary(), "-f", str(COMPOSE), "config", "-q"], env=env, cwd=REPO)
    assert result.returncode != 0
    assert variable in result.stderr and "set" in result.stderr


def test_profiles_choose_the_answerer_and_the_gpu_services() -> None:
    plain = set(config([COMPOSE], [])["services"])
    cpu = set(config([COMPOSE], ["cpu"])["services"])
    gpu = set(config([COMPOSE], ["gpu"])["services"])
    train = set(config([COMPOSE], ["train"])["services"])
    assert plain == {"redis", "gateway", "worker", "prometheus", "grafana"}
    assert cpu == plain | {"qa-lookup"}
    assert gpu == plain | GPU_SERVICES
    assert train == plain | {"trainer"}


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies() -> None:
    services = config([COMPOSE], ["cpu", "gpu"])["services"]
    assert set(services) == LONG_RUNNING
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name} has no exec-form healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", (name, dependency)
    assert set(services["worker"]["depends_on"]) == {"redis", "qa", "qa-lookup"}
    # Either answerer may be the one running: neither is required.
    assert not services["worker"]["depends_on"]["qa"]["required"]
    assert not services["worker"]["depends_on"]["qa-lookup"]["required"]
    assert set(services["trainer"]["depends_on"]) == {"gateway", "worker"}


def test_gpu_reservations_come_from_the_environment() -> None:
    env = compose_env(TRIVIA_QA_GPUS="5,6", TRIVIA_TRAINER_GPUS="0,1,2,3,4")
    services = config([COMPOSE], ["gpu"], env)["services"]
    for name, ids in (("qa", ["5,6"]), ("trainer", ["0,1,2,3,4"])):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert device["device_ids"] == ids
    for name in set(services) - GPU_SERVICES:
        assert "reservations" not in services[name].get("deploy", {}).get("resources", {}), name


def test_worker_replicas_and_qa_parallelism_are_knobs() -> None:
    env = compose_env(TRIVIA_WORKER_REPLICAS="7", TRIVIA_QA_DATA_PARALLEL_SIZE="2")
    services = config([COMPOSE], ["gpu"], env)["services"]
    assert services["worker"]["deploy"]["replicas"] == 7
    command = services["qa"]["command"]
    assert command[command.index("--data-parallel-size") + 1] == "2"


def test_the_qa_service_serves_qwen3_without_thinking_and_with_prefix_caching() -> None:
    command = config([COMPOSE], ["gpu"])["services"]["qa"]["command"]
    assert command[0] == "Qwen/Qwen3-8B"
    assert "--enable-prefix-caching" in command
    assert command[command.index("--served-model-name") + 1] == "qwen3-8b"
    template = command[command.index("--chat-template") + 1]
    assert template == "/opt/trivia/qwen3-nonthinking.jinja"
    dockerfile = (REPO / "docker/qa/Dockerfile").read_text(encoding="utf-8")
    assert f"qwen3-nonthinking.jinja {template}" in dockerfile


def test_images_are_pinned() -> None:
    services = config([COMPOSE], ["cpu", "gpu"])["services"]
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.search(r"\d", tag), f"{name}: {image} has no version tag"
        assert tag != "latest"


def test_the_reward_base_image_default_is_the_dockerfiles() -> None:
    services = config([COMPOSE], ["cpu"])["services"]
    base = services["gateway"]["build"]["args"]["BASE_IMAGE"]
    dockerfile = (REPO / "docker/reward/Dockerfile").read_text(encoding="utf-8")
    assert f"ARG BASE_IMAGE={base}\n" in dockerfile


def test_pip_mirror_arguments_pass_through_only_when_set() -> None:
    unset = config([COMPOSE], ["cpu"])["services"]["gateway"]["build"]["args"]
    assert set(unset) == {"BASE_IMAGE"}
    env = compose_env(PIP_INDEX_URL="http://mirror.invalid/simple")
    args = config([COMPOSE], ["cpu"], env)["services"]["gateway"]["build"]["args"]
    assert args["PIP_INDEX_URL"] == "http://mirror.invalid/simple"


def test_prometheus_and_grafana_get_their_files_from_the_repository() -> None:
    services = config([COMPOSE], [])["services"]
    mounts = {
        (m["source"], m["target"])
        for name in ("prometheus", "grafana")
        for m in services[name]["volumes"]
        if m["type"] == "bind"
    }
    assert (str(REPO / "monitoring/prometheus"), "/etc/prometheus") in mounts
    assert (str(REPO / "monitoring/grafana/provisioning"), "/etc/grafana/provisioning") in mounts
    assert (str(REPO / "monitoring/grafana/dashboards"), "/etc/trivia/dashboards") in mounts
    for source, _ in mounts:
        assert Path(source).is_dir(), source


def test_host_network_puts_every_service_on_the_host_and_splits_the_workers() -> None:
    services = config([COMPOSE, HOST_NETWORK], ["cpu", "gpu"])["services"]
    assert set(services) == LONG_RUNNING | {"worker-2"}
    for name, service in services.items():
        assert service.get("network_mode") == "host", name
        assert not service.get("ports"), name
        assert "build" not in service or service["build"].get("network") == "host", name
    ports = {
        services[w]["environment"]["TRIVIA_WORKER_METRICS_PORT"] for w in ("worker", "worker-2")
    }
    assert len(ports) == 2
    assert services["worker"]["deploy"]["replicas"] == 1
