"""The inspector is reachable where the gateway runs, and the training dashboard links to it.

Static checks only: the inspector is a route of the gateway, so what must hold is that the
deployments expose the gateway's port to a person (compose publishes it; Kubernetes serves it
on the Service's `http` port for a port-forward) behind the same token, and that the Reward
panel's data link builds the `/inspect?step=` address from the step of the point clicked.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

import yaml

from trivia.reward.routes.inspect import router
from trivia.settings import Settings

from .compose_files import COMPOSE, load
from .tools import REPO

BOARD = REPO / "monitoring/grafana/dashboards/trivia-training.json"


def _board() -> dict[str, Any]:
    return json.loads(BOARD.read_text(encoding="utf-8"))


def test_the_reward_panel_links_each_point_to_its_steps_batches() -> None:
    board = _board()
    (panel,) = [p for p in board["panels"] if p.get("title") == "Reward"]
    (step,) = [t for t in panel["targets"] if t["expr"] == "max(trivia_train_step)"]
    assert step["legendFormat"] == "step"
    # The step series joins the reward series row by row, so a point's link sees its step.
    assert {"id": "joinByField", "options": {"byField": "Time", "mode": "outer"}} in panel[
        "transformations"
    ]
    (link,) = panel["fieldConfig"]["defaults"]["links"]
    assert link["url"] == '${inspector}/inspect?step=${__data.fields["step"]}'
    hidden = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "step"]
    assert hidden and {"id": "links", "value": []} in hidden[0]["properties"]


def test_the_dashboards_inspector_address_is_the_gateways_default_port() -> None:
    (variable,) = [v for v in _board()["templating"]["list"] if v["name"] == "inspector"]
    assert variable["type"] == "textbox"
    assert variable["query"] == f"http://localhost:{Settings().port}"
    assert "/inspect" in {route.path for route in router.routes}  # type: ignore[attr-defined]


def test_compose_publishes_the_gateway_port_behind_the_token() -> None:
    gateway = load(COMPOSE)["services"]["gateway"]
    assert gateway["command"][-1] == "8000"
    assert any(str(port).endswith(":8000") for port in gateway["ports"])
    assert "TRIVIA_API_TOKEN" in gateway["environment"]


def _k8s(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "k8s/base" / name).read_text(encoding="utf-8"))


def test_kubernetes_serves_the_gateway_port_for_a_port_forward_behind_the_token() -> None:
    deployment = _k8s("deployment-gateway.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = container["args"][container["args"].index("--port") + 1]
    assert {"name": "http", "containerPort": int(port)}.items() <= container["ports"][0].items()
    token = [e for e in container["env"] if e["name"] == "TRIVIA_API_TOKEN"]
    assert token and "secretKeyRef" in token[0]["valueFrom"]
    service = _k8s("service-gateway.yaml")
    assert any(p["name"] == "http" and p["port"] == int(port) for p in service["spec"]["ports"])


def test_the_installed_package_ships_every_template_and_static_file() -> None:
    # The images install a wheel (`pip install --no-deps .`), which carries only package data.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = project["tool"]["setuptools"]["package-data"]["trivia.reward.inspector"]
    package = REPO / "src/trivia/reward/inspector"
    files = [p for folder in ("templates", "static") for p in (package / folder).iterdir()]
    assert files
    for path in files:
        relative = path.relative_to(package)
        assert any(relative.match(glob) for glob in globs), relative
