"""k8s/: kustomize builds, Kubernetes schemas, and the checks the schemas cannot make.

kubernetes-validate skips custom resources (KEDA's ScaledObject, the Prometheus Operator's
monitors and rules) with a warning, so what those point at is checked here: the Deployment a
ScaledObject scales, the Services and port names a ServiceMonitor scrapes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trivia.trainer.launch import load_config, plan_launch

from .metrics_catalog import unknown_labels, unknown_names
from .tools import REPO, run, venv_tool

K8S = REPO / "k8s"
BUILDS = {
    "root": K8S,
    "base": K8S / "base",
    "single-node": K8S / "overlays/single-node",
    "cluster": K8S / "overlays/cluster",
    "worker-hpa": None,  # the base with the HPA component in place of KEDA; made in a tmp dir
}
# Kubernetes minor versions the manifests support (and are validated against).
KUBERNETES_VERSIONS = [f"1.{minor}.0" for minor in range(30, 38)]
SCRAPE_JOBS = {"gateway", "worker", "qa", "trainer"}  # monitoring/prometheus/prometheus.yml
POD_KINDS = {"Deployment", "StatefulSet", "Job"}

Doc = dict[str, Any]


def _kustomize(path: Path) -> str:
    result = run([venv_tool("kubectl"), "kustomize", str(path)], cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each build's output, written to a file."""
    out = tmp_path_factory.mktemp("kustomize")
    component = out / "worker-hpa"
    component.mkdir()
    (component / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(K8S / "base", component)],
                "components": [os.path.relpath(K8S / "components/worker-hpa", component)],
            }
        ),
        encoding="utf-8",
    )
    files = {}
    for name, path in BUILDS.items():
        files[name] = out / f"{name}.yaml"
        files[name].write_text(_kustomize(path or component), encoding="utf-8")
    return files


def _docs(file: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if d]


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _pods(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            yield doc, doc["spec"]["template"]


def _containers(pod: Doc) -> list[Doc]:
    return pod["spec"].get("initContainers", []) + pod["spec"]["containers"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _gpus(pod: Doc) -> int:
    return sum(
        int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
        for c in pod["spec"]["containers"]
    )


# --- builds and schemas --------------------------------------------------------------------------


def test_every_kustomization_builds(built: dict[str, Path]) -> None:
    for name, file in built.items():
        kinds = {d["kind"] for d in _docs(file)}
        assert {"Deployment", "StatefulSet", "Job", "NetworkPolicy"} <= kinds, name


def test_kubectl_apply_k_on_the_root_deploys_the_single_node_overlay(
    built: dict[str, Path],
) -> None:
    assert built["root"].read_text() == built["single-node"].read_text()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builds_validate_strictly_against_kubernetes(built: dict[str, Path], version: str) -> None:
    validator = venv_tool("kubernetes-validate")
    files = [str(f) for f in built.values()]
    result = run([validator, "--strict", "--quiet", "-k", version, *files])
    assert result.returncode == 0, result.stdout + result.stderr
    # Only custom resources may go unchecked (they are checked below).
    output = result.stdout + result.stderr
    skipped = set(re.findall(r"schema for kind (\w+) with api version (\S+)", output))
    assert skipped <= {
        ("ScaledObject", "keda.sh/v1alpha1"),
        ("ServiceMonitor", "monitoring.coreos.com/v1"),
        ("PodMonitor", "monitoring.coreos.com/v1"),
        ("PrometheusRule", "monitoring.coreos.com/v1"),
    }, skipped


# --- layout --------------------------------------------------------------------------------------


def test_kustomizations_use_labels_not_the_deprecated_common_labels() -> None:
    files = [*K8S.rglob("kustomization.yaml"), REPO / "monitoring/kustomization.yaml"]
    for file in files:
        assert "commonLabels" not in yaml.safe_load(file.read_text()), file
    base = yaml.safe_load((K8S / "base/kustomization.yaml").read_text())
    assert base["labels"][0]["pairs"]


def test_base_has_one_object_per_file_named_by_kind_and_name() -> None:
    base = yaml.safe_load((K8S / "base/kustomization.yaml").read_text())
    for entry in base["resources"]:
        path = K8S / "base" / entry
        if path.is_dir():
            continue
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert path.name == f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml", entry


@pytest.mark.parametrize("overlay", ["single-node", "cluster"])
def test_overlays_only_patch_the_base(overlay: str) -> None:
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    assert set(kustomization) <= {"apiVersion", "kind", "resources", "patches", "images"}
    for patch in kustomization["patches"]:
        assert (K8S / "overlays" / overlay / patch["path"]).exists()


# --- every workload ------------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["base", "cluster", "single-node"])
def test_every_container_has_requests_and_limits(built: dict[str, Path], build: str) -> None:
    for owner, pod in _pods(_docs(built[build])):
        for container in _containers(pod):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (
                    f"{owner['metadata']['name']}/{container['name']} has no {bound}"
                )


def test_cpu_workloads_run_as_non_root(built: dict[str, Path]) -> None:
    cpu_workloads = set()
    for owner, pod in _pods(_docs(built["base"])):
        if _gpus(pod):
            continue
        cpu_workloads.add(owner["metadata"]["name"])
        context = pod["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
        for container in _containers(pod):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert cpu_workloads == {"gateway", "worker", "redis"}


def test_images_are_pinned(built: dict[str, Path]) -> None:
    for _, pod in _pods(_docs(built["cluster"])):
        for container in _containers(pod):
            repository, _, tag = container["image"].rpartition(":")
            assert repository and re.search(r"\d", tag) and tag != "latest", container["image"]


# --- QA, Redis, trainer --------------------------------------------------------------------------


def test_qa_runs_vllm_on_a_gpu_with_health_probes_shm_and_a_model_cache(
    built: dict[str, Path],
) -> None:
    docs = _docs(built["base"])
    pod = _find(docs, "Deployment", "qa")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] >= 1
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    claim = volumes[mounts["/models"]]["persistentVolumeClaim"]["claimName"]
    _find(docs, "PersistentVolumeClaim", claim)
    service = _find(docs, "Service", "qa")
    assert _selects(service["spec"]["selector"], pod["metadata"]["labels"])
    assert "--enable-prefix-caching" in container["args"]
    # The workers ask that Service for that model.
    settings = _find(docs, "ConfigMap", "reward-settings")["data"]
    args = container["args"]
    assert settings["TRIVIA_QA_MODEL"] == args[args.index("--served-model-name") + 1]
    port = service["spec"]["ports"][0]["port"]
    assert settings["TRIVIA_QA_URLS"] == f"http://{service['metadata']['name']}:{port}/v1"


def test_redis_is_a_statefulset_with_a_volume_and_append_only_persistence(
    built: dict[str, Path],
) -> None:
    docs = _docs(built["base"])
    redis = _find(docs, "StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    config = _find(docs, "ConfigMap", "redis")["data"]["valkey.conf"].split("\n")
    assert "appendonly yes" in config and "maxmemory-policy noeviction" in config
    settings = _find(docs, "ConfigMap", "reward-settings")["data"]
    service = _find(docs, "Service", "redis")
    assert settings["TRIVIA_REDIS_URL"] == f"redis://redis:{service['spec']['ports'][0]['port']}/0"


@pytest.mark.parametrize("build", ["base", "single-node", "cluster"])
def test_the_trainer_job_gets_gpus_and_its_launch_config_from_a_configmap(
    built: dict[str, Path], build: str, tmp_path: Path
) -> None:
    docs = _docs(built[build])
    pod = _find(docs, "Job", "trainer")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    gpus = container["resources"]["limits"]["nvidia.com/gpu"]
    assert gpus >= 1 and int(env["NPROC_PER_NODE"]) == gpus
    assert env["CUDA_VISIBLE_DEVICES"] == ",".join(str(i) for i in range(gpus))
    config_path = Path(container["args"][container["args"].index("--config") + 1])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    configmap = _find(docs, "ConfigMap", volume["configMap"]["name"])
    launch = tmp_path / config_path.name
    launch.write_text(configmap["data"][config_path.name], encoding="utf-8")
    plan = plan_launch(load_config(launch), environ={**env, "TRIVIA_TRAIN_DATA": "/data/t.jsonl"})
    assert plan.argv[1] == "rlhf" and "--reward_funcs" in plan.argv
    port = next(p for p in container["ports"] if p["name"] == "metrics")["containerPort"]
    assert int(plan.env["TRIVIA_TRAIN_METRICS_PORT"]) == port
    assert env["TRIVIA_REWARD_URL"] == "http://gateway:8000"


# --- custom resources ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["base", "single-node", "cluster"])
def test_the_scaledobject_scales_the_workers_on_queued_plus_running_jobs(
    built: dict[str, Path], build: str
) -> None:
    docs = _docs(built[build])
    scaled = _find(docs, "ScaledObject", "worker")
    spec = scaled["spec"]
    worker = _find(docs, "Deployment", spec["scaleTargetRef"]["name"])
    assert worker["metadata"]["name"] == "worker"
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["fallback"]["replicas"] >= spec["minReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    assert "trivia_queue_depth" in query and "trivia_jobs_in_flight" in query
    assert not unknown_names(query) and not unknown_labels(query)
    assert f'namespace="{scaled["metadata"]["namespace"]}"' in query
    assert float(trigger["metadata"]["threshold"]) > 0
    # The queue the gateway measures is the one the scaled workers consume.
    gateway = _find(docs, "Deployment", "gateway")
    sources = [
        [
            e["configMapRef"]["name"]
            for e in d["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        ]
        for d in (gateway, worker)
    ]
    assert sources[0] == sources[1]
    assert "TRIVIA_QUEUE_NAME" in _find(docs, "ConfigMap", sources[0][0])["data"]


def test_without_keda_an_hpa_scales_the_workers(built: dict[str, Path]) -> None:
    docs = _docs(built["worker-hpa"])
    assert not [d for d in docs if d["kind"] == "ScaledObject"]
    hpa = _find(docs, "HorizontalPodAutoscaler", "worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "worker",
    }


def test_monitors_point_at_existing_services_ports_and_job_names(built: dict[str, Path]) -> None:
    docs = _docs(built["base"])
    pods = [pod for _, pod in _pods(docs)]
    jobs = set()
    for monitor in (d for d in docs if d["kind"] == "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            d
            for d in docs
            if d["kind"] == "Service" and _selects(selector, d["metadata"]["labels"])
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        service = services[0]
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        backing = [
            p for p in pods if _selects(service["spec"]["selector"], p["metadata"]["labels"])
        ]
        assert backing, service["metadata"]["name"]
        container_ports = {p["name"] for c in backing[0]["spec"]["containers"] for p in c["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports
            assert ports[endpoint["port"]]["targetPort"] in container_ports
        jobs.add(service["metadata"]["labels"][monitor["spec"]["jobLabel"]])
    for monitor in (d for d in docs if d["kind"] == "PodMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        (pod,) = [p for p in pods if _selects(selector, p["metadata"]["labels"])]
        container_ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in container_ports
        jobs.add(pod["metadata"]["labels"][monitor["spec"]["jobLabel"]])
    assert jobs == SCRAPE_JOBS


def test_the_prometheusrule_carries_the_alert_rules_of_the_monitoring_folder(
    built: dict[str, Path],
) -> None:
    rule = _find(_docs(built["base"]), "PrometheusRule", "trivia")
    rules = yaml.safe_load((REPO / "monitoring/prometheus/rules/trivia-alerts.yml").read_text())
    assert rule["spec"]["groups"] == rules["groups"]


def test_the_dashboards_configmap_holds_every_dashboard(built: dict[str, Path]) -> None:
    configmap = _find(_docs(built["base"]), "ConfigMap", "trivia-grafana-dashboards")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    files = sorted((REPO / "monitoring/grafana/dashboards").glob("*.json"))
    assert sorted(configmap["data"]) == [f.name for f in files]
    for file in files:
        assert json.loads(configmap["data"][file.name]) == json.loads(file.read_text())


# --- network policies ----------------------------------------------------------------------------


def _admitted(policy: Doc) -> set[str]:
    """Who a policy admits: pod components of this namespace, or `ns:<name>` namespaces."""
    admitted = set()
    for rule in policy["spec"].get("ingress", []):
        for peer in rule["from"]:
            if "namespaceSelector" in peer:
                labels = peer["namespaceSelector"]["matchLabels"]
                admitted.add("ns:" + labels["kubernetes.io/metadata.name"])
            else:
                admitted.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"])
    return admitted


def test_network_policies_admit_only_who_needs_each_service(built: dict[str, Path]) -> None:
    docs = _docs(built["base"])
    policies = {
        d["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component", "*"): d
        for d in docs
        if d["kind"] == "NetworkPolicy"
    }
    deny = policies["*"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert _admitted(policies["redis"]) == {"gateway", "worker"}
    assert _admitted(policies["qa"]) == {"worker", "ns:monitoring"}
    assert _admitted(policies["gateway"]) == {"trainer", "ns:monitoring"}
    assert _admitted(policies["worker"]) == {"ns:monitoring"}
    assert _admitted(policies["trainer"]) == {"ns:monitoring"}
    # Every admitted port is a named port of the pods the policy protects.
    pods = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for _, p in _pods(docs)}
    for component, policy in policies.items():
        if component == "*":
            continue
        names = {p["name"] for c in pods[component]["spec"]["containers"] for p in c["ports"]}
        for rule in policy["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= names, component


# --- overlays ------------------------------------------------------------------------------------


def test_the_cluster_overlay_places_gpu_pods_on_gpu_pools_and_scales_out(
    built: dict[str, Path],
) -> None:
    cluster, single = _docs(built["cluster"]), _docs(built["single-node"])
    for owner, pod in _pods(cluster):
        if _gpus(pod):
            assert pod["spec"]["nodeSelector"]["nvidia.com/gpu.present"] == "true"
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
                pod["spec"]["tolerations"]
            ), owner["metadata"]["name"]
    most = {
        name: _find(docs, "ScaledObject", "worker")["spec"]["maxReplicaCount"]
        for name, docs in (("cluster", cluster), ("single", single))
    }
    assert most["cluster"] > most["single"]
    assert _find(cluster, "Deployment", "qa")["spec"]["replicas"] > 1
    claim = _find(cluster, "PersistentVolumeClaim", "qa-model-cache")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_single_node_overlay_fits_qa_and_trainer_on_eight_gpus(built: dict[str, Path]) -> None:
    docs = _docs(built["single-node"])
    qa = _find(docs, "Deployment", "qa")
    trainer = _find(docs, "Job", "trainer")
    total = qa["spec"]["replicas"] * _gpus(qa["spec"]["template"]) + _gpus(
        trainer["spec"]["template"]
    )
    assert total == 8
