"""Redis requires its password in Compose and Kubernetes, and every Redis client has it.

The static checks read the rendered projects (`docker compose config`, `kubectl kustomize`):
each Redis client mounts the secret and names it in TRIVIA_REDIS_PASSWORD_FILE, and the password
is on no command line and in no environment. The start scripts and health checks of the valkey
containers are then run as written, with a real valkey-server (and redis-cli as valkey-cli):
the server refuses clients without the password, and neither its command line nor its
environment holds it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

from trivia.ports import free_port
from trivia.reward.redis_server import valkey_binary, wait_for_redis

from .compose_files import COMPOSE, HOST_NETWORK, compose_env, config
from .tools import REPO, debian_tool, run, venv_tool

PASSWORD = "Zq7-redis-password-under-test"
COMPOSE_SECRET = "/run/secrets/redis_password"
K8S_SECRET = "trivia-redis-password"
K8S_BUILDS = {
    "root": REPO / "k8s",
    "base": REPO / "k8s/base",
    **{
        name: REPO / "k8s/overlays" / name
        for name in ("single-node", "cluster", "minimal", "multinode")
    },
}
REDIS_CLIENTS = {"gateway", "worker"}


def _compose(files: list[Path]) -> dict[str, Any]:
    return config(files, ["cpu", "gpu"], compose_env(TRIVIA_REDIS_PASSWORD=PASSWORD))


def _unescaped(text: str) -> str:
    """A string of `docker compose config` as the container gets it (`$$` is a `$`)."""
    return text.replace("$$", "$")


# --- Compose -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["compose", "host-network"])
def project(request: pytest.FixtureRequest) -> dict[str, Any]:
    files = [COMPOSE] if request.param == "compose" else [COMPOSE, HOST_NETWORK]
    return _compose(files)


def test_the_secret_comes_from_trivia_redis_password(project: dict[str, Any]) -> None:
    assert project["secrets"]["redis_password"]["environment"] == "TRIVIA_REDIS_PASSWORD"


def test_every_redis_client_in_compose_reads_the_secret(project: dict[str, Any]) -> None:
    clients = {
        name: service
        for name, service in project["services"].items()
        if "TRIVIA_REDIS_URL" in service.get("environment", {})
    }
    assert {name.removesuffix("-2") for name in clients} >= REDIS_CLIENTS
    for name, service in [*clients.items(), ("redis", project["services"]["redis"])]:
        env = service["environment"]
        assert env["TRIVIA_REDIS_PASSWORD_FILE"] == COMPOSE_SECRET, name
        (secret,) = [s for s in service.get("secrets", []) if s["source"] == "redis_password"]
        assert secret["target"] == COMPOSE_SECRET, name
        # redis reads it as root before dropping to its own user: root's alone. The reward
        # services run as 10001; a uid here breaks Docker < 23 (see compose.yaml), so the
        # file is root's and readable inside the container, and nothing writes it.
        mode = secret["mode"]
        mode = int(mode, 8) if isinstance(mode, str) else mode
        if name == "redis":
            assert mode == 0o400, name
        else:
            assert mode == 0o444, name
            assert "uid" not in secret and "gid" not in secret, name
            assert "@" not in env["TRIVIA_REDIS_URL"], name  # no password in the URL


def test_the_password_is_in_no_service_definition(project: dict[str, Any]) -> None:
    """Not on a command line, in an environment, a health check or a label: `docker inspect`."""
    for name, service in project["services"].items():
        assert PASSWORD not in json.dumps(service), name


def test_the_redis_health_check_authenticates_without_a_password_argument(
    project: dict[str, Any],
) -> None:
    test = project["services"]["redis"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "REDISCLI_AUTH=" in test[-1] and "-a" not in test[-1].split()


# --- Kubernetes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s_builds() -> dict[str, list[dict[str, Any]]]:
    builds = {}
    for name, path in K8S_BUILDS.items():
        result = run([venv_tool("kubectl"), "kustomize", str(path)], cwd=REPO)
        assert result.returncode == 0, result.stderr
        builds[name] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return builds


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            pod = doc["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                yield doc["metadata"]["name"], pod, container


def _environment(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", "<from a reference>")
    return env


@pytest.mark.parametrize("build", list(K8S_BUILDS))
def test_every_redis_client_in_k8s_reads_the_secret_as_a_file(
    k8s_builds: dict[str, list[dict[str, Any]]], build: str
) -> None:
    docs = k8s_builds[build]
    clients = set()
    for name, pod, container in _containers(docs):
        env = _environment(docs, container)
        if "TRIVIA_REDIS_URL" not in env and name != "redis":
            continue
        clients.add(name)
        assert "@" not in env.get("TRIVIA_REDIS_URL", ""), name
        path = Path(env["TRIVIA_REDIS_PASSWORD_FILE"])
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent)]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == K8S_SECRET, name
        assert path.name == "password", name  # the Secret's key
        # Group-readable for the pod's fsGroup (the server's or the service's user), no other.
        assert volume["secret"]["defaultMode"] == 0o440, name
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"], name
    assert clients == REDIS_CLIENTS | {"redis"}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item)


@pytest.mark.parametrize("build", list(K8S_BUILDS))
def test_no_k8s_object_holds_a_redis_password(
    k8s_builds: dict[str, list[dict[str, Any]]], build: str
) -> None:
    docs = k8s_builds[build]
    assert not [d for d in docs if d["kind"] == "Secret"]  # created in the cluster, not shipped
    for doc in docs:
        # Only the start script sets it, from the file.
        set_by = [m for t in _strings(doc) for m in re.findall(r"requirepass \S+", t)]
        assert set_by in ([], ["requirepass $password"]), set_by
        assert doc["kind"] != "StatefulSet" or set_by, "the check saw no script"
        text = json.dumps(doc)
        assert '"TRIVIA_REDIS_PASSWORD"' not in text  # no variable holding the password itself
    for doc in docs:
        if doc["kind"] == "ScaledObject":
            # KEDA asks Prometheus; a redis trigger would need the password too.
            assert {t["type"] for t in doc["spec"]["triggers"]} == {"prometheus"}


# --- the valkey containers' scripts, run ----------------------------------------------------------


def _compose_redis() -> tuple[str, list[str], str]:
    redis = _compose([COMPOSE])["services"]["redis"]
    entrypoint = [_unescaped(part) for part in redis["entrypoint"]]
    assert entrypoint[:2] == ["sh", "-c"]
    probe = _unescaped(redis["healthcheck"]["test"][-1])
    return entrypoint[2], [*entrypoint[3:], *redis["command"]], probe


def _k8s_redis(docs: list[dict[str, Any]]) -> tuple[str, list[str], str]:
    (container,) = [c for name, _, c in _containers(docs) if name == "redis"]
    assert container["command"][:2] == ["sh", "-c"]
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe == container["livenessProbe"]["exec"]["command"]
    return container["command"][2], [*container["command"][3:], *container["args"]], probe[-1]


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's commands: its entrypoint (which ends in `exec "$@"`), valkey-server, -cli."""
    path = tmp_path_factory.mktemp("bin")
    entrypoint = path / "docker-entrypoint.sh"
    entrypoint.write_text('#!/bin/sh\nexec "$@"\n', encoding="utf-8")
    entrypoint.chmod(0o755)
    (path / "valkey-server").symlink_to(valkey_binary())
    (path / "valkey-cli").symlink_to(debian_tool("redis-cli", "redis-tools"))
    return path


class Started:
    def __init__(self, process: subprocess.Popen[bytes], port: int, env: dict[str, str]) -> None:
        self.process, self.port, self.env = process, port, env


def _start(kind: str, bin_dir: Path, data: Path, password: str, k8s: Any) -> tuple[Started, str]:
    script, argv, probe = _compose_redis() if kind == "compose" else _k8s_redis(k8s)
    port = free_port()
    if kind == "compose":
        argv = [a for a in argv]
        argv[argv.index("--port") + 1] = str(port)
        argv[argv.index("--dir") + 1] = str(data)
    else:
        conf = data / "valkey.conf"
        conf.write_text(f"port {port}\ndir {data}\nappendonly yes\n", encoding="utf-8")
        argv = [*argv[:-1], str(conf)]
    secret = data / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TRIVIA_REDIS_PASSWORD_FILE": str(secret),
    }
    process = subprocess.Popen(
        ["sh", "-c", script, *argv], env=env, cwd=data, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    return Started(process, port, env), probe.replace("6379", str(port))


@pytest.mark.parametrize("kind", ["compose", "k8s"])
def test_valkey_as_started_refuses_clients_without_the_password(
    kind: str, bin_dir: Path, tmp_path: Path, k8s_builds: dict[str, list[dict[str, Any]]]
) -> None:
    started, probe = _start(kind, bin_dir, tmp_path, PASSWORD, k8s_builds["base"])
    try:
        url = f"redis://:{PASSWORD}@127.0.0.1:{started.port}/0"

        def exited() -> str | None:
            if started.process.poll() is None:
                return None
            assert started.process.stdout is not None
            return started.process.stdout.read().decode()

        wait_for_redis(url, time.monotonic() + 30, exited=exited)
        with pytest.raises((AuthenticationError, ResponseError)):
            Redis(port=started.port).ping()
        with pytest.raises(AuthenticationError):
            Redis(port=started.port, password="guess").ping()
        assert Redis.from_url(url).config_get("appendonly") == {"appendonly": "yes"}
        # The shell ran `exec`: the server is the process started, and holds the password in
        # neither its command line nor its environment.
        proc = Path(f"/proc/{started.process.pid}")
        assert PASSWORD.encode() not in (proc / "cmdline").read_bytes()
        assert PASSWORD.encode() not in (proc / "environ").read_bytes()
        # The health check: passes with the secret, fails with another password in it.
        assert run(["sh", "-c", probe], env=started.env).returncode == 0
        Path(started.env["TRIVIA_REDIS_PASSWORD_FILE"]).write_text("guess\n", encoding="utf-8")
        assert run(["sh", "-c", probe], env=started.env).returncode != 0
    finally:
        started.process.terminate()
        started.process.wait(30)


@pytest.mark.parametrize("password", ["", "has space", 'quo"te'])
@pytest.mark.parametrize("kind", ["compose", "k8s"])
def test_valkey_refuses_to_start_with_an_unusable_password(
    kind: str,
    password: str,
    bin_dir: Path,
    tmp_path: Path,
    k8s_builds: dict[str, list[dict[str, Any]]],
) -> None:
    """An empty password would turn authentication off; quotes would garble the config."""
    started, _ = _start(kind, bin_dir, tmp_path, password, k8s_builds["base"])
    output, _ = started.process.communicate(timeout=30)
    assert started.process.returncode == 1
    assert "the password must be letters, digits" in output.decode()
    assert not os.path.exists(tmp_path / "appendonlydir")
