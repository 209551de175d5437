"""The `gpu` profile, rehearsed on a machine without a GPU: what a GPU user runs first.

The shipped compose.yaml with compose.host-network.yaml and compose.offline.yaml, plus
rehearsal/compose.rehearsal.yaml, which replaces only what needs silicon or a registry: the
lookup answerer stands in for vLLM as `qa` (same port and health path, 90 s late, as a model
load would be), the trainer image is built from its real Dockerfile on the local Debian base
with the project's torch from a host wheelhouse (no vLLM), and trains the tiny Qwen2.5-VL on the
CPU with data mounted at /data, and Prometheus is Debian's binary in a local image. It checks:
the start order survives a slow QA service; the trainer finishes GRPO steps with rewards from
the gateway, writes its checkpoint and logging.jsonl into the trainer-runs volume and exits 0;
`docker compose stop trainer` mid-run ends in a checkpoint and exit 0; Prometheus scrapes
every target; every Grafana panel's query returns data, except those listed with the reason;
`down -v` leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from trivia.dataset.qa_from_table import qa_from_table

from .compose_files import COMPOSE, HOST_NETWORK, OFFLINE, offline_env
from .conftest import (
    PRUNE_TIMEOUT_S,
    brought_down,
    cached_wheelhouse,
    engine_client,
    prune_build_cache,
    require_free_disk,
)
from .dockerfiles import build_args, requirements_command
from .tools import IN_CI, REPO, compose_binary, debian_tool, run
from .wheelhouse import build_host_wheelhouse

# The first run builds the trainer image (torch and its CUDA libraries): give it time.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

PROJECT = "trivia-rehearsal"
TOKEN = "rehearsal-token"
REHEARSAL = Path(__file__).with_name("rehearsal")
REHEARSAL_CONFIG = REHEARSAL / "rehearsal-cpu.yaml"
FILES = [COMPOSE, HOST_NETWORK, OFFLINE, REHEARSAL / "compose.rehearsal.yaml"]
SERVICES = ["redis", "gateway", "worker", "worker-2", "qa", "prometheus", "trainer"]
# compose.host-network.yaml's default ports, which the shipped Prometheus config scrapes.
PORTS = {"gateway": 8000, "qa": 8001, "redis": 6379, "worker": 9101, "worker-2": 9102}
PORTS |= {"trainer": 9400, "prometheus": 9090}
GATEWAY = "http://127.0.0.1:8000"
PROMETHEUS = "http://127.0.0.1:9090"
QA_DELAY_S = 90
TRAINER = REPO / "docker/trainer/Dockerfile"
TRAINER_IMAGE = yaml.safe_load(COMPOSE.read_text("utf-8"))["services"]["trainer"]["image"]
DASHBOARDS = sorted((REPO / "monitoring/grafana/dashboards").glob("*.json"))
# Panels that cannot show data here, with the reason.
NEEDS_GPU = {
    "vllm:": "vLLM's own metrics: only the real QA server (vLLM on a GPU) exports them",
    "DCGM_": "NVIDIA's DCGM exporter: GPUs on Kubernetes",
}
FAILURE_ONLY = {
    "Failed QA calls": "counts only QA calls that did not answer 2xx; none fail here",
    "Failed item share": "its numerator, items with outcome `failed`, exists only after a failure",
}
# Grafana's variables: the rate window it would pick for a 15 s scrape, and a dashboard range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "15m", "$__interval": "15s"}
# What the trainer's wheelhouse and its image build take on a machine that has neither (measured
# on a fresh data directory: about 20 GB at the build's peak), with some margin.
TRAINER_BUILD_DISK_BYTES = 24 << 30
TIMINGS: list[tuple[str, float]] = []


def _pins(*names: str) -> dict[str, str]:
    """The project's own pins of `names` (the rehearsal's stand-ins for vLLM's)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    found = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["train"]]:
        name, _, version = requirement.partition("==")
        if name in names:
            found[name] = version
    return found


VERSIONS = _pins("torch", "torchvision", "numba", "numpy")
BUILD_ARGS = {
    "VLLM_VERSION": "",
    "TORCH_VERSION": VERSIONS["torch"],
    "TORCHVISION_VERSION": VERSIONS["torchvision"],
    "NUMBA_VERSION": VERSIONS["numba"],
    "NUMPY_VERSION": VERSIONS["numpy"],
}


def _timed(label: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    try:
        return action()
    finally:
        TIMINGS.append((label, time.monotonic() - started))


@pytest.fixture(scope="module", autouse=True)
def _report_timings(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and TIMINGS:
        reporter.write_line("")
        reporter.write_line("gpu-profile rehearsal, time per stage:")
        for label, seconds in TIMINGS:
            reporter.write_line(f"  {label:<52} {seconds:7.1f} s")


def _image_present(engine: httpx.Client, name: str) -> bool:
    return engine.get(f"/images/{name}/json").status_code == 200


@pytest.fixture(scope="module")
def trainer_wheels(
    docker_socket: str,
    base_python: str,
    serve_wheelhouse: Callable[[str, Path], str],
    tmp_path_factory,
) -> Iterator[str]:
    """The trainer image's requirements, written by the Dockerfile's own RUN line, as wheels.

    In CI the wheelhouse is removed afterwards: nothing reuses it there.
    """
    with engine_client(docker_socket) as engine:
        if not _image_present(engine, TRAINER_IMAGE):
            require_free_disk(engine, TRAINER_BUILD_DISK_BYTES, "building the trainer image")
    work = tmp_path_factory.mktemp("trainer-requirements")
    (work / "docker").mkdir()
    shutil.copy(REPO / "pyproject.toml", work)
    shutil.copy(REPO / "docker/requirements.py", work / "docker")
    env = {**os.environ, **build_args(TRAINER), **BUILD_ARGS}
    written = run(["sh", "-c", requirements_command(TRAINER)], cwd=work, env=env)
    assert written.returncode == 0, written.stderr
    build_system = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["build-system"]
    requirements = [
        *(work / "requirements.txt").read_text("utf-8").split(),
        *build_system["requires"],
    ]
    directory = _timed(
        "trainer wheelhouse (cached after the first run)",
        lambda: cached_wheelhouse(
            "trainer-wheelhouse",
            requirements,
            base_python,
            lambda d: build_host_wheelhouse(requirements, d, base_python, sources=["deepspeed"]),
        ),
    )
    yield serve_wheelhouse("trainer", directory)
    if IN_CI:
        shutil.rmtree(directory)


def _rehearsal_data(folder: Path) -> Path:
    """Tiny model, demo tables with QA pairs and the launch configs, as /data will see them."""
    from trivia.trainer.demo_data import prepare_dataset
    from trivia.trainer.tiny_model import build_tiny_qwen2_5_vl

    prepared = prepare_dataset(REPO / "examples/pubtabnet", folder / "staging")
    (folder / "images").mkdir(parents=True)
    for split in (prepared.train, prepared.val):
        rows = []
        for line in split.read_text("utf-8").splitlines():
            row = json.loads(line)
            for i, image in enumerate(row["images"]):
                shutil.copy(image, folder / "images" / Path(image).name)
                row["images"][i] = f"/data/images/{Path(image).name}"
            rows.append(json.dumps(row))
        (folder / split.name).write_text("\n".join(rows) + "\n", "utf-8")
    shutil.rmtree(folder / "staging")
    build_tiny_qwen2_5_vl(folder / "model")
    config = yaml.safe_load(REHEARSAL_CONFIG.read_text("utf-8"))
    shutil.copy(REHEARSAL_CONFIG, folder / "rehearsal-cpu.yaml")
    # The run that is stopped: long, evaluating every other step, no save of its own.
    config["swift"] |= {"max_steps": 500, "eval_steps": 2, "save_strategy": "no"}
    config["swift"]["output_dir"] = "runs/rehearsal-stop"
    (folder / "rehearsal-stop.yaml").write_text(yaml.safe_dump(config), "utf-8")
    # The container's user (uid 10001) reads the bind mount.
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Rehearsal:
    docker_socket: str
    env: dict[str, str]
    events: dict[str, float] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 600, **env: str) -> Any:
        argv = [compose_binary(), "-p", PROJECT, "--profile", "gpu"]
        for file in FILES:
            argv += ["-f", str(file)]
        return run([*argv, *args], env={**self.env, **env}, cwd=REPO, timeout=timeout)

    def engine(self, timeout: float = 120) -> httpx.Client:
        return engine_client(self.docker_socket, timeout)

    def container(self, service: str) -> dict[str, Any]:
        filters = json.dumps(
            {
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )
        with self.engine() as engine:
            (found,) = engine.get(
                "/containers/json", params={"all": "1", "filters": filters}
            ).json()
            return engine.get(f"/containers/{found['Id']}/json").json()

    def wait_exit(self, service: str, timeout: float) -> int:
        container = self.container(service)
        with self.engine(timeout=timeout) as engine:
            answer = engine.post(
                f"/containers/{container['Id']}/wait", params={"condition": "not-running"}
            )
        return int(answer.json()["StatusCode"])

    def volume(self, name: str) -> Path:
        with self.engine() as engine:
            return Path(engine.get(f"/volumes/{PROJECT}_{name}").json()["Mountpoint"])

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service).stdout

    def leftovers(self) -> list[str]:
        label = json.dumps({"label": [f"com.docker.compose.project={PROJECT}"]})
        with self.engine() as engine:
            containers = engine.get("/containers/json", params={"all": "1", "filters": label})
            volumes = engine.get("/volumes", params={"filters": label}).json()["Volumes"] or []
            networks = engine.get("/networks", params={"filters": label}).json()
        return (
            [c["Names"][0] for c in containers.json()]
            + [v["Name"] for v in volumes]
            + [n["Name"] for n in networks]
        )


@pytest.fixture(scope="module")
def rehearsal(
    docker_socket: str,
    docker_env: dict[str, str],
    base_image: str,
    wheelhouse_url: str,
    trainer_wheels: str,
    tmp_path_factory,
) -> Iterator[Rehearsal]:
    busy = [f"{name} {port}" for name, port in PORTS.items() if not _free(port)]
    assert not busy, f"the rehearsal needs the default ports: in use {busy}"
    data = _timed("tiny model and data", lambda: _rehearsal_data(tmp_path_factory.mktemp("data")))
    context = tmp_path_factory.mktemp("prometheus")
    shutil.copy(debian_tool("prometheus", "prometheus"), context / "prometheus")
    shutil.copy(REHEARSAL / "prometheus.Dockerfile", context)
    env = offline_env(
        docker_socket,
        base_image,
        wheelhouse_url,
        TOKEN,
        TRIVIA_REHEARSAL_TRAINER_WHEELS=trainer_wheels,
        TRIVIA_REHEARSAL_PROMETHEUS_CONTEXT=str(context),
        TRIVIA_REHEARSAL_QA_DELAY_S=str(QA_DELAY_S),
        TRIVIA_DATA_DIR=str(data),
        TRIVIA_TRAIN_CONFIG="/data/rehearsal-cpu.yaml",
        TRIVIA_TRAINER_NPROC="1",
        **{f"TRIVIA_REHEARSAL_{k}": v for k, v in BUILD_ARGS.items() if k != "VLLM_VERSION"},
    )
    stack = Rehearsal(docker_socket=docker_socket, env=env)
    with brought_down(stack, stop_timeout_s=30, leftovers=stack.leftovers):
        for label, service in (
            ("reward image", "gateway"),
            ("trainer image (cached when unchanged)", "trainer"),
            ("prometheus image", "prometheus"),
        ):
            built = _timed(
                f"build {label}", lambda s=service: stack.compose("build", s, timeout=3000)
            )
            assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-6000:]
        with stack.engine() as engine:
            prune_build_cache(engine)  # in CI, the trainer's build stage (~8 GB) goes now
        stack.events["up"] = time.time()
        up = _timed(
            "up, until the trainer starts (qa 90 s late)",
            lambda: stack.compose("up", "--detach", "--no-build", *SERVICES, timeout=900),
        )
        assert up.returncode == 0, up.stderr + stack.compose("logs", "--tail", "40").stdout
        yield stack
    if IN_CI:  # the trainer image (~8 GB) is not used again on a CI machine
        with stack.engine() as engine:
            removed = engine.delete(
                f"/images/{TRAINER_IMAGE}", params={"force": "1"}, timeout=PRUNE_TIMEOUT_S
            )
            assert removed.status_code == 200, removed.text


def _started(container: dict[str, Any]) -> float:
    stamp = container["State"]["StartedAt"]
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return (
        time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        - time.timezone
        + float(f"0.{fraction or 0}")
    )


def test_the_trainer_waits_for_the_slow_qa_service_and_nothing_fails_meanwhile(rehearsal):
    qa = rehearsal.container("qa")
    trainer = rehearsal.container("trainer")
    assert qa["State"]["Health"]["Status"] == "healthy"
    # The gateway, which the trainer waits on, stayed healthy while `qa` loaded.
    gateway = rehearsal.container("gateway")
    assert gateway["State"]["Health"]["Status"] == "healthy"
    assert gateway["State"]["Health"]["FailingStreak"] == 0
    assert _started(trainer) >= _started(qa) + QA_DELAY_S - 1
    for service in ("worker", "worker-2"):
        assert _started(rehearsal.container(service)) >= _started(qa) + QA_DELAY_S - 1


def _steps(log: Path) -> list[dict[str, Any]]:
    if not log.is_file():
        return []
    rows = []
    for line in log.read_text("utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
    return [row for row in rows if "reward" in row]


def test_the_trainer_finishes_its_grpo_steps_with_rewards_from_the_gateway(rehearsal):
    code = _timed("trainer: two GRPO steps on the CPU", lambda: rehearsal.wait_exit("trainer", 900))
    log = rehearsal.logs("trainer")
    assert code == 0, log[-6000:]
    runs = rehearsal.volume("trainer-runs") / "rehearsal"
    steps = _steps(runs / "logging.jsonl")
    assert len(steps) == 2, log[-4000:]
    for step in steps:
        assert step["reward_failures/count"] == 0  # every completion got its reward
        assert 0.0 <= step["rewards/QA_F1_score/mean"] <= 1.0
    checkpoint = runs / "checkpoint-2"
    assert (checkpoint / "config.json").is_file(), sorted(p.name for p in runs.iterdir())
    # Written by the image's user into a volume that started out as the image's folder.
    assert {p.stat().st_uid for p in [runs, checkpoint, *checkpoint.iterdir()]} == {10001}


@dataclass
class LongRun:
    log: Path
    traffic: threading.Event


def _tables(count: int, offset: int = 0) -> list[dict[str, Any]]:
    items = []
    for i in range(offset, offset + count):
        html = (
            "<table><tr><td>Name</td><td>Score</td></tr>"
            f"<tr><td>P{i}</td><td>{7 * i + 3} pts</td></tr></table>"
        )
        items.append(
            {"id": f"t{i}", "completion": html, "qa_pairs": qa_from_table(html), "solution": html}
        )
    # The same table twice in one request: its questions are asked once.
    items.append({**items[0], "id": f"t{offset}-again"})
    return items


def _send_traffic(stop: threading.Event) -> None:
    """Scoring requests, as a trainer sends them, until `stop` (at most 10 minutes)."""
    deadline = time.monotonic() + 600
    sent = 0
    while not stop.is_set() and time.monotonic() < deadline:
        httpx.post(
            f"{GATEWAY}/v1/rewards",
            json={"items": _tables(3, offset=3 * sent), "metrics": ["qa_f1", "teds"]},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        sent += 1
        stop.wait(0.5)


@pytest.fixture(scope="module")
def long_run(rehearsal) -> Iterator[LongRun]:
    """The trainer again, on a run long enough to be stopped, with scoring traffic beside it."""
    started = rehearsal.compose(
        "up", "--detach", "--no-build", "--no-deps", "--force-recreate", "trainer",
        TRIVIA_TRAIN_CONFIG="/data/rehearsal-stop.yaml",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    log = rehearsal.volume("trainer-runs") / "rehearsal-stop" / "logging.jsonl"
    stop = threading.Event()
    sender = threading.Thread(target=_send_traffic, args=(stop,), daemon=True)
    sender.start()

    def first_steps() -> None:
        deadline = time.monotonic() + 600
        while len(_steps(log)) < 2:
            state = rehearsal.container("trainer")["State"]
            assert state["Running"], rehearsal.logs("trainer")[-4000:]
            assert time.monotonic() < deadline, "the long run logged no step"
            time.sleep(2)

    _timed("trainer again: start and first steps", first_steps)
    yield LongRun(log=log, traffic=stop)
    stop.set()
    sender.join(timeout=90)


def _query(expr: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=30)
    assert answer.status_code == 200, (expr, answer.text)
    return answer.json()["data"]["result"]


def _wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(2)


def test_prometheus_scrapes_every_target(rehearsal, long_run):
    config = yaml.safe_load(
        (REPO / "monitoring/prometheus/prometheus.host-network.yml").read_text()
    )
    expected = {
        (job["job_name"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }

    def all_up() -> bool:
        found = {(s["metric"]["job"], s["metric"]["instance"]): s["value"][1] for s in _query("up")}
        return set(found) == expected and set(found.values()) == {"1"}

    _timed(
        "prometheus: every target up", lambda: _wait_for(all_up, 120, f"targets: {_query('up')}")
    )


def _panels() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text("utf-8"))
        for panel in board["panels"]:
            if panel["type"] != "row":
                found.append((path.stem, panel["title"], [t["expr"] for t in panel["targets"]]))
    return found


def _grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown template variable in {expr}"
    return expr


def _has_data(expr: str) -> bool:
    return any(not math.isnan(float(s["value"][1])) for s in _query(_grafana(expr)))


def test_every_grafana_panel_returns_data_except_those_that_cannot_here(long_run, capsys):
    panels = _panels()
    gpu_only = {
        (board, title, reason)
        for board, title, exprs in panels
        for prefix, reason in NEEDS_GPU.items()
        if any(prefix in e for e in exprs)
    }
    skipped = {(board, title) for board, title, _ in gpu_only}

    def empty() -> list[tuple[str, str]]:
        missing = []
        for board, title, exprs in panels:
            if (board, title) in skipped or title in FAILURE_ONLY:
                continue
            if not all(_has_data(e) for e in exprs):
                missing.append((board, title))
        return missing

    # The trainer's gauges and the rates need a few scrapes (15 s apart).
    deadline = time.monotonic() + 180
    missing = empty()
    while missing and time.monotonic() < deadline:
        time.sleep(5)
        missing = empty()
    assert not missing, f"panels without data: {missing}"
    with capsys.disabled():
        print("\npanels that need a GPU:")
        for board, title, reason in sorted(gpu_only):
            print(f"  {board}: {title} ({reason})")
        for title, reason in FAILURE_ONLY.items():
            print(f"  failure-only: {title} ({reason})")


def test_stopping_the_trainer_saves_a_checkpoint_and_exits_cleanly(rehearsal, long_run):
    long_run.traffic.set()
    stopped = _timed(
        "docker compose stop trainer, to a checkpoint", lambda: rehearsal.compose("stop", "trainer")
    )
    assert stopped.returncode == 0, stopped.stderr
    log = rehearsal.logs("trainer")
    assert rehearsal.container("trainer")["State"]["ExitCode"] == 0, log[-6000:]
    assert "SIGTERM: saving a checkpoint at the end of this step" in log
    saved = re.search(r"stop requested: checkpoint saved at step (\d+)", log)
    assert saved, log[-4000:]
    runs = long_run.log.parent
    assert (runs / f"checkpoint-{saved.group(1)}" / "config.json").is_file()
    assert len(_steps(long_run.log)) < 500  # it stopped early, at our request


def test_a_reward_call_survives_the_gateway_being_stopped_mid_request(rehearsal):
    """SIGTERM to the gateway while a trainer's call waits on it: the call still gets every score.

    The answerer is frozen so that the request is in flight when the signal lands; the gateway
    drains or fails it, Docker's restart policy brings the gateway back, and the trainer's
    reward client (trivia.trainer.rewards.fetch_rewards, with its retries) gets its answer.
    """
    import asyncio

    from trivia.trainer.rewards import fetch_rewards

    items = _tables(4, offset=100_000)  # tables nobody asked about: no cached answers
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["results"] = asyncio.run(
                fetch_rewards(GATEWAY, items, ["qa_f1"], token=TOKEN, timeout_s=180)
            )
        except Exception as error:  # reported below with the gateway's log
            outcome["error"] = error

    answerer = int(rehearsal.container("qa")["State"]["Pid"])
    gateway = rehearsal.container("gateway")
    restarts = gateway["RestartCount"]
    os.kill(answerer, signal.SIGSTOP)
    try:
        caller = threading.Thread(target=call)
        caller.start()
        queue = redis.Redis(port=PORTS["redis"], password=rehearsal.env["TRIVIA_REDIS_PASSWORD"])
        _wait_for(lambda: queue.zcard("rq:wip:trivia-rewards") >= 1, 60, "no job was taken")
        os.kill(int(gateway["State"]["Pid"]), signal.SIGTERM)
        time.sleep(1)
    finally:
        os.kill(answerer, signal.SIGCONT)
    caller.join(timeout=240)
    log = rehearsal.logs("gateway")[-4000:]
    assert "error" not in outcome, (outcome.get("error"), log)
    results = outcome["results"]
    assert [r["id"] for r in results] == [i["id"] for i in items]
    assert all(r["error"] is None and r["qa_f1"] == 1.0 for r in results), results
    # It did stop: its restart policy brings it back once it has drained.
    _wait_for(
        lambda: rehearsal.container("gateway")["RestartCount"] == restarts + 1,
        60,
        "the gateway did not stop on SIGTERM",
    )
