"""monitoring/grafana: dashboards that load, pick their datasource, and use metrics that exist.

Grafana has no offline validator for dashboard JSON, so the properties that make a dashboard
load and show data are checked here.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from .compose_files import COMPOSE, config
from .metrics_catalog import unknown_labels, unknown_names
from .tools import REPO

DASHBOARDS = sorted((REPO / "monitoring/grafana/dashboards").glob("*.json"))
PROVISIONING = REPO / "monitoring/grafana/provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What each dashboard must show, as metrics its queries use.
REQUIRED = {
    "trivia-reward.json": {
        "trivia_requests_total",  # throughput
        "trivia_request_duration_seconds_bucket",  # latency
        "trivia_qa_calls_total",  # QA calls
        "trivia_answer_cache_total",  # cache hit rate
        "trivia_items_total",  # failures
        "trivia_queue_depth",  # queue depth
        "trivia_workers_alive",  # workers
    },
    "trivia-training.json": {
        "trivia_train_reward_mean",
        "trivia_train_valid_rate",
        "trivia_train_rejection_rate",
        "trivia_train_reward_failures_total",
        "trivia_train_step_seconds",
    },
    "trivia-qa.json": {
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_hits_total",
        "vllm:e2e_request_latency_seconds_bucket",
    },
}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_dashboards_are_the_three_promised_with_unique_uids() -> None:
    assert {p.name for p in DASHBOARDS} == set(REQUIRED)
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_a_dashboard_chooses_its_prometheus_through_a_variable(path: Path) -> None:
    board = _load(path)
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in _panels(board):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panels_are_titled_described_and_laid_out_without_overlap(path: Path) -> None:
    board = _load(path)
    assert board["title"] and board["schemaVersion"] >= 36 and "trivia" in board["tags"]
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in _panels(board):
        assert panel["title"] and panel["description"], panel
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    boxes = [p["gridPos"] for p in board["panels"]]
    for box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24 and box["h"] > 0
    for a, b in combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, (a, b)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_queries_use_only_metrics_and_labels_the_code_exports(path: Path) -> None:
    used = set()
    for panel in _panels(_load(path)):
        for target in panel["targets"]:
            expr = target["expr"]
            assert not unknown_names(expr), (panel["title"], expr)
            assert not unknown_labels(expr), (panel["title"], expr)
            assert expr.count("(") == expr.count(")"), expr
            used |= set(re.findall(r"\b(?:trivia_|vllm:)[A-Za-z0-9_:]+", expr))
    assert used >= REQUIRED[path.name]


def test_compose_provisions_the_datasource_and_the_dashboards_folder() -> None:
    grafana = config([COMPOSE], [])["services"]["grafana"]
    (source,) = yaml.safe_load((PROVISIONING / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    variable = re.fullmatch(r"\$\{(\w+)\}", source["url"])
    assert variable and grafana["environment"][variable.group(1)] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards/trivia.yml").read_text())["providers"]
    targets = {m["target"]: m["source"] for m in grafana["volumes"] if m["type"] == "bind"}
    assert Path(targets[provider["options"]["path"]]) == DASHBOARDS[0].parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent == Path(provider["options"]["path"])
    assert (DASHBOARDS[0].parent / Path(home).name).exists()


def test_the_deployment_guide_describes_every_panel() -> None:
    guide = (REPO / "docs/deploy.md").read_text(encoding="utf-8")
    for path in DASHBOARDS:
        board = _load(path)
        assert board["title"] in guide
        for panel in _panels(board):
            assert f"**{panel['title']}**" in guide, f"{path.name}: {panel['title']}"
