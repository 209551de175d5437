"""Reading the Compose files as Compose does: YAML with Compose's merge tags, and `config`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from .tools import REPO, compose_binary, run

COMPOSE = REPO / "compose.yaml"
HOST_NETWORK = REPO / "compose.host-network.yaml"
OFFLINE = Path(__file__).with_name("compose.offline.yaml")

# What must be set for `docker compose` to accept the file at all.
REQUIRED_ENV = {
    "TRIVIA_API_TOKEN": "test-token",
    "TRIVIA_REDIS_PASSWORD": "test-redis-password",
    "GRAFANA_ADMIN_PASSWORD": "test-password",
}


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's `!reset` and `!override` merge tags read as plain values."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_ComposeLoader.add_multi_constructor("!", _untagged)


def load(path: Path) -> dict[str, Any]:
    """A Compose file as data, merge tags dropped."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_ComposeLoader)


def compose_env(**extra: str) -> dict[str, str]:
    """An environment for Compose: the required variables, no stray TRIVIA_* or PIP_* knobs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIVIA_", "PIP_", "COMPOSE_"))}
    return {**env, **REQUIRED_ENV, **extra}


def offline_env(
    docker_socket: str, base_image: str, wheelhouse_url: str, token: str, **extra: str
) -> dict[str, str]:
    """`compose_env` for a project built and run on the test daemon: the local base image, pip
    installing from the served wheelhouse only, and the gateway's API token."""
    return compose_env(
        DOCKER_HOST=f"unix://{docker_socket}",
        TRIVIA_API_TOKEN=token,
        TRIVIA_REWARD_BASE_IMAGE=base_image,
        PIP_FIND_LINKS=wheelhouse_url,
        PIP_NO_INDEX="1",
        **extra,
    )


def config(
    files: list[Path], profiles: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The project as Compose v2 resolves it (`docker compose config --format json`)."""
    argv = [compose_binary()]
    for file in files:
        argv += ["-f", str(file)]
    for profile in profiles:
        argv += ["--profile", profile]
    result = run([*argv, "config", "--format", "json"], env=env or compose_env(), cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
