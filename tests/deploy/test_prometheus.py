"""monitoring/prometheus: promtool accepts the configs and rules, and the rule tests pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .metrics_catalog import unknown_labels, unknown_names
from .tools import REPO, debian_tool, run

PROMETHEUS = REPO / "monitoring/prometheus"
CONFIGS = sorted(PROMETHEUS.glob("prometheus*.yml"))
# rules/ is what compose's Prometheus loads; rules-dcgm/ only the Kubernetes DCGM component.
RULES = sorted((PROMETHEUS / "rules").glob("*.yml")) + sorted(
    (PROMETHEUS / "rules-dcgm").glob("*.yml")
)
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
# The alerts the deployment promises.
REQUIRED_ALERTS = {
    "TriviaRewardFailuresRising",
    "TriviaQueueBackingUp",
    "TriviaNoWorkers",
    "TriviaQAEndpointDown",
    # Targets that vanished from discovery leave no `up` series to be 0.
    "TriviaGatewayAbsent",
    "TriviaWorkersAbsent",
    "TriviaQAAbsent",
    "TriviaTrainerStalled",
    "TriviaGPUMetricsAbsent",
    "TriviaGPUXidError",
    "TriviaGPUTooHot",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return debian_tool("promtool", "prometheus")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_accepts_the_config_and_the_rules_it_loads(promtool: str, config: Path) -> None:
    result = run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    # The rule files were found and checked too.
    assert "rules/trivia-alerts.yml" in result.stdout + result.stderr


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run([promtool, "check", "rules", *map(str, RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass(promtool: str) -> None:
    assert RULE_TESTS
    result = run([promtool, "test", "rules", *map(str, RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def _alerts() -> list[dict]:
    return [
        rule
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_the_promised_alerts_exist_and_each_has_a_unit_test() -> None:
    names = {rule["alert"] for rule in _alerts()}
    assert names >= REQUIRED_ALERTS
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == names


def test_alerts_use_only_metrics_and_labels_the_code_exports() -> None:
    for rule in _alerts():
        assert not unknown_names(rule["expr"]), rule["alert"]
        assert not unknown_labels(rule["expr"]), rule["alert"]


def test_every_scrape_job_has_an_alert_for_its_targets_vanishing() -> None:
    """`up == 0` cannot fire for a target that is no longer discovered at all."""
    exprs = [rule["expr"] for rule in _alerts()]
    for job in ("gateway", "worker", "qa", "nvidia-dcgm-exporter"):
        assert f'absent(up{{job="{job}"}})' in exprs, job


def test_both_configs_scrape_the_same_jobs() -> None:
    jobs = [
        {job["job_name"] for job in yaml.safe_load(config.read_text())["scrape_configs"]}
        for config in CONFIGS
    ]
    assert jobs[0] == jobs[1] >= {"gateway", "worker", "qa", "trainer"}
