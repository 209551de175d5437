"""k8s/: kustomize builds, Kubernetes schemas, and the checks the schemas cannot make.

kubernetes-validate skips custom resources (KEDA's ScaledObject, the Prometheus Operator's
monitors and rules) with a warning, so what those point at is checked here: the Deployment a
ScaledObject scales, the Services and port names a ServiceMonitor scrapes. So are the things
that only fail on a real cluster: images that resolve to Docker Hub, a scaler and a replica
count that fight, a rolling update that needs a ninth GPU, a volume class that never binds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trivia.settings import TRAINER_STOP_GRACE_S
from trivia.trainer.launch import load_config, plan_launch

from .metrics_catalog import unknown_labels, unknown_names
from .tools import REPO, run, venv_tool

K8S = REPO / "k8s"
OVERLAYS = ["single-node", "cluster", "minimal", "multinode"]
COMPONENTS = sorted(p.name for p in (K8S / "components").iterdir() if p.is_dir())
BUILDS: dict[str, Path | None] = {
    "root": K8S,
    "base": K8S / "base",
    **{name: K8S / "overlays" / name for name in OVERLAYS},
    # The base with one component; made in a tmp dir.
    **{f"component-{name}": None for name in COMPONENTS},
}
# The custom resources, each in a component of its own, never in the base.
CUSTOM_KINDS = {
    ("ScaledObject", "keda.sh/v1alpha1"),
    ("ServiceMonitor", "monitoring.coreos.com/v1"),
    ("PodMonitor", "monitoring.coreos.com/v1"),
    ("PrometheusRule", "monitoring.coreos.com/v1"),
}
PROJECT_IMAGES = {"reward", "qa", "trainer"}
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
    files = {}
    for name, path in BUILDS.items():
        if path is None:
            path = out / name
            path.mkdir()
            component = K8S / "components" / name.removeprefix("component-")
            (path / "kustomization.yaml").write_text(
                yaml.safe_dump(
                    {
                        "resources": [os.path.relpath(K8S / "base", path)],
                        "components": [os.path.relpath(component, path)],
                    }
                ),
                encoding="utf-8",
            )
        files[name] = out / f"{name}.yaml"
        files[name].write_text(_kustomize(path), encoding="utf-8")
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
    assert skipped <= CUSTOM_KINDS, skipped


@pytest.mark.parametrize("build", ["base", "minimal"])
def test_the_base_and_the_minimal_overlay_need_no_custom_resource_definitions(
    built: dict[str, Path], build: str
) -> None:
    """On a cluster without KEDA or the Prometheus Operator, apply must not fail partway."""
    kinds = {(d["kind"], d["apiVersion"]) for d in _docs(built[build])}
    assert not kinds & CUSTOM_KINDS
    assert all(
        api.split("/")[0] in {"v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}
        for _, api in kinds
    ), kinds


def test_the_root_is_the_whole_stack(built: dict[str, Path]) -> None:
    kinds = {(d["kind"], d["apiVersion"]) for d in _docs(built["root"])}
    assert kinds >= CUSTOM_KINDS


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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_only_patch_the_base_and_add_components(overlay: str) -> None:
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    # The base, or another overlay to build on; then objects of the overlay's own.
    first, *own = kustomization["resources"]
    assert first == "../../base" or first.removeprefix("../") in OVERLAYS
    assert all((K8S / "overlays" / overlay / path).is_file() for path in own)
    keys = {"apiVersion", "kind", "resources", "components", "patches", "images", "replacements"}
    assert set(kustomization) <= keys
    for patch in kustomization.get("patches", []):
        assert (K8S / "overlays" / overlay / patch["path"]).exists()
    for component in kustomization.get("components", []):
        assert (K8S / "overlays" / overlay / component / "kustomization.yaml").exists()


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_keep_their_objects_in_the_stacks_namespace(
    built: dict[str, Path], component: str
) -> None:
    for doc in _docs(built[f"component-{component}"]):
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "trivia", doc["metadata"]["name"]
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "trivia-stack"


# --- every workload ------------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
def test_every_container_has_requests_and_limits(built: dict[str, Path], build: str) -> None:
    for owner, pod in _pods(_docs(built[build])):
        for container in _containers(pod):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (
                    f"{owner['metadata']['name']}/{container['name']} has no {bound}"
                )


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
def test_every_workload_runs_as_non_root_without_capabilities(
    built: dict[str, Path], build: str
) -> None:
    workloads = set()
    for owner, pod in _pods(_docs(built[build])):
        workloads.add(owner["metadata"]["name"])
        context = pod["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in _containers(pod):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert "add" not in container["securityContext"]["capabilities"]
    assert workloads == {"gateway", "worker", "redis", "qa", "trainer"}


def test_the_qa_pod_has_a_read_only_root_and_writable_caches(built: dict[str, Path]) -> None:
    pod = _find(_docs(built["base"]), "Deployment", "qa")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["env"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    writable = {path for path in writable if path != "/dev/shm"}
    for variable in ("HOME", "XDG_CACHE_HOME", "HF_HOME"):
        assert any(Path(env[variable]).is_relative_to(path) for path in writable), variable
    tmp = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in volumes[tmp]


def _registry(image: str) -> str:
    """The registry an image is pulled from; one without a host part is Docker Hub's."""
    first, _, rest = image.partition("/")
    qualified = rest and ("." in first or ":" in first or first == "localhost")
    return first if qualified else ""


@pytest.mark.parametrize("build", list(BUILDS))
def test_images_are_fully_qualified_and_pinned(built: dict[str, Path], build: str) -> None:
    registries = set()
    for _, pod in _pods(_docs(built[build])):
        for container in _containers(pod):
            image = container["image"]
            assert _registry(image), f"{image} would be pulled from Docker Hub by default"
            repository, _, tag = image.rpartition(":")
            assert repository and re.search(r"\d", tag) and tag != "latest", image
            if repository.rpartition("/")[2] in PROJECT_IMAGES:
                registries.add(repository.rpartition("/")[0])
    # The project's images come from one registry, set in one place.
    assert len(registries) == 1, registries


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_names_each_project_image_for_kustomize_edit_set_image(
    built: dict[str, Path], overlay: str
) -> None:
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    entries = {entry["name"] for entry in kustomization["images"]}
    used = {
        container["image"].rpartition(":")[0]
        for _, pod in _pods(_docs(built[overlay]))
        for container in _containers(pod)
        if container["image"].rpartition(":")[0].rpartition("/")[2] in PROJECT_IMAGES
    }
    assert entries == used


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
    # ...through a headless Service: one address per ready replica, resolved and re-resolved
    # by the workers, which send each table's questions to one replica.
    replicas = _find(docs, "Service", "qa-replicas")
    assert replicas["spec"]["clusterIP"] == "None"
    assert not replicas["spec"].get("publishNotReadyAddresses")
    assert _selects(replicas["spec"]["selector"], pod["metadata"]["labels"])
    port = replicas["spec"]["ports"][0]
    assert port["targetPort"] == service["spec"]["ports"][0]["targetPort"]
    assert settings["TRIVIA_QA_URLS"] == f"http://qa-replicas:{port['port']}/v1"
    assert float(settings["TRIVIA_QA_RESOLVE_S"]) > 0


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


@pytest.mark.parametrize("build", ["base", *OVERLAYS])
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


def test_a_stopping_trainer_has_the_grace_period_to_save_a_checkpoint(
    built: dict[str, Path],
) -> None:
    """On SIGTERM the trainer finishes its step and saves; the kubelet's default 30 s would
    kill it mid-step. Every build's trainer pods (one per rank on several nodes) wait as long
    as Compose does."""
    for name, file in built.items():
        pod = _find(_docs(file), "Job", "trainer")["spec"]["template"]
        assert pod["spec"].get("terminationGracePeriodSeconds") == TRAINER_STOP_GRACE_S, name


def _wait_for_data(built: dict[str, Path]) -> tuple[Doc, Doc]:
    pod = _find(_docs(built["base"]), "Job", "trainer")["spec"]["template"]
    (init,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "wait-for-data"]
    (trainer,) = pod["spec"]["containers"]
    return init, trainer


def test_the_trainer_waits_for_its_data_before_anything_else(built: dict[str, Path]) -> None:
    """An empty trainer-data volume must not fail the Job (backoffLimit 0) for good."""
    pod = _find(_docs(built["base"]), "Job", "trainer")["spec"]["template"]
    assert pod["spec"]["initContainers"][0]["name"] == "wait-for-data"
    init, trainer = _wait_for_data(built)
    data = {m["name"]: m["mountPath"] for m in trainer["volumeMounts"]}
    assert {m["name"]: m["mountPath"] for m in init["volumeMounts"]} == {"data": data["data"]}
    # It checks the very files the trainer reads.
    init_env = {e["name"]: e["value"] for e in init["env"]}
    trainer_env = {e["name"]: e.get("value") for e in trainer["env"]}
    for name in ("TRIVIA_TRAIN_DATA", "TRIVIA_VAL_DATA"):
        assert init_env[name] == trainer_env[name]
        assert Path(init_env[name]).parent == Path(data["data"])


def _run_wait_for_data(init: Doc, folder: Path) -> subprocess.Popen[str]:
    assert init["command"][:2] == ["python3", "-c"]
    env = {
        **os.environ,
        "TRIVIA_TRAIN_DATA": str(folder / "train.jsonl"),
        "TRIVIA_VAL_DATA": str(folder / "val.jsonl"),
        "TRIVIA_DATA_POLL_S": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-c", init["command"][2]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_wait_for_data_says_what_is_missing_and_goes_on_once_the_files_are_complete(
    built: dict[str, Path], tmp_path: Path
) -> None:
    init, _ = _wait_for_data(built)
    (tmp_path / "train.jsonl").write_text('{"images": ["a.png"]}\n', encoding="utf-8")
    process = _run_wait_for_data(init, tmp_path)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("waiting for training data: missing or empty:")
        missing = line.split("missing or empty:")[1].split(" - ")[0].split(",")
        assert [m.strip() for m in missing] == [str(tmp_path / "val.jsonl")]
        assert "trainer-data volume" in line and process.poll() is None
        (tmp_path / "val.jsonl").write_text('{"images": ["b.png"]}\n', encoding="utf-8")
        out, _ = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out.strip().splitlines()[-1].startswith("training data found:")


# --- custom resources ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["root", "single-node", "cluster"])
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


@pytest.mark.parametrize("build", ["component-worker-hpa", "minimal"])
def test_without_keda_an_hpa_scales_the_workers(built: dict[str, Path], build: str) -> None:
    docs = _docs(built[build])
    assert not [d for d in docs if d["kind"] == "ScaledObject"]
    hpa = _find(docs, "HorizontalPodAutoscaler", "worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "worker",
    }


@pytest.mark.parametrize("build", list(BUILDS))
def test_a_scaled_deployment_sets_no_replicas_for_apply_to_reset(
    built: dict[str, Path], build: str
) -> None:
    docs = _docs(built[build])
    scalers = [d for d in docs if d["kind"] in {"ScaledObject", "HorizontalPodAutoscaler"}]
    assert len({d["spec"]["scaleTargetRef"]["name"] for d in scalers}) == len(scalers)
    for scaler in scalers:
        target = _find(docs, "Deployment", scaler["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], (build, scaler["kind"])


def test_monitors_point_at_existing_services_ports_and_job_names(built: dict[str, Path]) -> None:
    docs = _docs(built["single-node"])
    pods = [pod for _, pod in _pods(docs)]
    jobs = set()
    for monitor in (d for d in docs if d["kind"] == "ServiceMonitor"):
        if "namespaceSelector" in monitor["spec"]:
            continue  # another namespace's Service (the DCGM exporter, tested below)
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


def test_the_dcgm_monitor_scrapes_the_gpu_operators_exporter_keeping_pod_labels(
    built: dict[str, Path],
) -> None:
    monitor = _find(_docs(built["component-dcgm-exporter"]), "ServiceMonitor", "dcgm-exporter")
    spec = monitor["spec"]
    # The GPU Operator's Service: nvidia-dcgm-exporter in gpu-operator, port gpu-metrics.
    assert spec["namespaceSelector"] == {"matchNames": ["gpu-operator"]}
    assert spec["selector"] == {"matchLabels": {"app": "nvidia-dcgm-exporter"}}
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] == "gpu-metrics" and endpoint["honorLabels"] is True
    # No jobLabel: the job is the Service's name, which the GPU alerts select.
    assert "jobLabel" not in spec
    rules = (REPO / "monitoring/prometheus/rules-dcgm/trivia-gpu-alerts.yml").read_text()
    assert 'job="nvidia-dcgm-exporter"' in rules


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        ("trivia", "monitoring/prometheus/rules/trivia-alerts.yml"),
        ("trivia-gpu", "monitoring/prometheus/rules-dcgm/trivia-gpu-alerts.yml"),
    ],
)
def test_the_prometheusrules_carry_the_alert_rules_of_the_monitoring_folder(
    built: dict[str, Path], name: str, rules: str
) -> None:
    rule = _find(_docs(built["root"]), "PrometheusRule", name)
    assert rule["spec"]["groups"] == yaml.safe_load((REPO / rules).read_text())["groups"]


@pytest.mark.parametrize("build", ["root", "cluster"])
def test_kube_prometheus_stack_selects_every_monitor_and_rule_by_its_release_label(
    built: dict[str, Path], build: str
) -> None:
    monitoring = [d for d in _docs(built[build]) if d["apiVersion"] == "monitoring.coreos.com/v1"]
    assert len(monitoring) >= 6
    assert {d["metadata"]["labels"].get("release") for d in monitoring} == {"kube-prometheus-stack"}


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


@pytest.mark.parametrize("build", list(BUILDS))
def test_a_readwritemany_claim_names_its_storage_class(built: dict[str, Path], build: str) -> None:
    """Default classes (EBS, Persistent Disk) cannot do ReadWriteMany: the claim would hang."""
    for claim in _docs(built[build]):
        if (
            claim["kind"] == "PersistentVolumeClaim"
            and "ReadWriteMany" in claim["spec"]["accessModes"]
        ):
            assert claim["spec"]["storageClassName"] == "trivia-rwx", claim["metadata"]["name"]
    guide = (REPO / "docs/deploy.md").read_text(encoding="utf-8")
    assert "trivia-rwx" in guide


@pytest.mark.parametrize("build", ["single-node", "minimal"])
def test_on_one_node_qa_and_trainer_take_all_eight_gpus_so_qa_is_recreated(
    built: dict[str, Path], build: str
) -> None:
    docs = _docs(built[build])
    qa = _find(docs, "Deployment", "qa")
    trainer = _find(docs, "Job", "trainer")
    total = qa["spec"]["replicas"] * _gpus(qa["spec"]["template"]) + _gpus(
        trainer["spec"]["template"]
    )
    assert total == 8
    # A surge pod would wait for a ninth GPU forever.
    assert qa["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("build", list(BUILDS))
def test_a_qa_update_never_asks_for_a_gpu_more_than_the_replicas_hold(
    built: dict[str, Path], build: str
) -> None:
    strategy = _find(_docs(built[build]), "Deployment", "qa")["spec"]["strategy"]
    assert strategy["type"] == "Recreate" or strategy["rollingUpdate"]["maxSurge"] == 0


# --- GPU metrics ---------------------------------------------------------------------------------

# Series of the DCGM exporter's default counters (NVIDIA/dcgm-exporter etc/default-counters.csv)
# and the labels it sets; with Kubernetes mapping on, the GPU's pod as namespace/pod/container.
DCGM_SERIES = {
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_XID_ERRORS",
}
DCGM_LABELS = {"gpu", "UUID", "device", "modelName", "Hostname", "namespace", "pod", "container"}


def _dcgm_queries() -> list[str]:
    board = json.loads((REPO / "monitoring/grafana/dashboards/trivia-training.json").read_text())
    exprs = [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]
    rules = yaml.safe_load(
        (REPO / "monitoring/prometheus/rules-dcgm/trivia-gpu-alerts.yml").read_text()
    )
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return [e for e in exprs if "DCGM_" in e]


def test_the_training_dashboard_has_a_gpu_row_of_the_stacks_pods() -> None:
    board = json.loads((REPO / "monitoring/grafana/dashboards/trivia-training.json").read_text())
    rows = [p for p in board["panels"] if p["type"] == "row" and "GPU" in p["title"]]
    assert len(rows) == 1
    below = [p for p in board["panels"] if p["gridPos"]["y"] == rows[0]["gridPos"]["y"] + 1]
    exprs = [t["expr"] for p in below for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"DCGM_\w+", expr)}
    assert used >= {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP"}
    for panel in below:
        for target in panel["targets"]:
            assert 'namespace="trivia"' in target["expr"], panel["title"]


def test_gpu_queries_use_only_series_and_labels_the_dcgm_exporter_exports() -> None:
    queries = _dcgm_queries()
    assert queries
    for expr in queries:
        assert set(re.findall(r"DCGM_\w+", expr)) <= DCGM_SERIES, expr
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            assert {label.strip() for label in group.split(",")} <= DCGM_LABELS, expr
        for matchers in re.findall(r"DCGM_\w+\{([^}]*)\}", expr):
            assert set(re.findall(r"(\w+)\s*=", matchers)) <= DCGM_LABELS, expr


# --- multi-node training -------------------------------------------------------------------------

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


def _rank_env(container: Doc, index: int) -> dict[str, str]:
    """A rank's environment as the kubelet fills it: values, and the pod's completion index."""
    annotations = {COMPLETION_INDEX: str(index)}  # set by the Job controller on Indexed pods
    env = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        field = entry["valueFrom"].get("fieldRef", {}).get("fieldPath", "")
        annotation = re.fullmatch(r"metadata\.annotations\['(.+)'\]", field)
        if annotation:
            env[entry["name"]] = annotations[annotation.group(1)]
    return env


def test_multinode_runs_the_trainer_as_an_indexed_job_of_whole_nodes(
    built: dict[str, Path],
) -> None:
    docs = _docs(built["multinode"])
    job = _find(docs, "Job", "trainer")
    spec, pod = job["spec"], job["spec"]["template"]
    nodes = spec["completions"]
    assert nodes >= 2 and spec["parallelism"] == nodes and spec["completionMode"] == "Indexed"
    # Fail together: one failed rank fails the Job, which stops the others.
    assert spec["backoffLimit"] == 0 and pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert _gpus(pod) == 8 and pod["spec"]["nodeSelector"]["nvidia.com/gpu.count"] == "8"
    # Pod 0's stable name: hostname trainer-0 in the subdomain of a headless Service.
    service = _find(docs, "Service", pod["spec"]["subdomain"])
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert _selects(service["spec"]["selector"], pod["metadata"]["labels"])
    env = _rank_env(container, 0)
    assert env["MASTER_ADDR"] == f"{job['metadata']['name']}-0.{service['metadata']['name']}"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["rendezvous"] == int(env["MASTER_PORT"])
    assert service["spec"]["ports"][0]["targetPort"] == "rendezvous"
    # Every rank reads the same data and writes the same checkpoints, from its own node.
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    for claim in claims:
        access = _find(docs, "PersistentVolumeClaim", claim)["spec"]
        assert access["accessModes"] == ["ReadWriteMany"], claim
    # Ranks may reach each other on any port (NCCL picks its own); Prometheus reaches rank 0.
    policy = _find(docs, "NetworkPolicy", "trainer")
    assert _admitted(policy) == {"trainer", "ns:monitoring"}
    monitor = _find(docs, "PodMonitor", "trainer")
    assert monitor["spec"]["selector"]["matchLabels"][COMPLETION_INDEX] == "0"


def test_every_rank_runs_trivia_train_with_its_own_torchrun_node_flags(
    built: dict[str, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from trivia.cli import app

    docs = _docs(built["multinode"])
    job = _find(docs, "Job", "trainer")
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    nodes = job["spec"]["completions"]
    config_path = Path(container["args"][container["args"].index("--config") + 1])
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "launch")
    launch = tmp_path / config_path.name
    launch.write_text(
        _find(docs, "ConfigMap", volume["configMap"]["name"])["data"][config_path.name], "utf-8"
    )
    commands = []
    for rank in range(nodes):
        env = _rank_env(container, rank)
        assert env["NNODES"] == str(nodes) and env["NODE_RANK"] == str(rank)
        assert env["MASTER_ADDR"] == "trainer-0.trainer" and env["NPROC_PER_NODE"] == "8"
        result = CliRunner().invoke(app, ["train", "--config", str(launch), "--dry-run"], env=env)
        assert result.exit_code == 0, result.output
        command = result.output.split("# which ms-swift runs as:\n")[1].strip()
        argv = shlex.split(command)
        assert argv[1:3] == ["-m", "torch.distributed.run"]
        script = next(i for i, a in enumerate(argv) if a.endswith("swift/cli/rlhf.py"))
        flags = dict(zip(argv[3:script:2], argv[4:script:2], strict=True))
        assert flags == {
            "--nproc_per_node": "8",
            "--master_port": env["MASTER_PORT"],
            "--nnodes": str(nodes),
            "--node_rank": str(rank),
            "--master_addr": "trainer-0.trainer",
        }
        assert "--rlhf_type" in argv[script:]
        commands.append(command)
    print("\n".join(commands))  # the exact command of each rank, with `pytest -s`
    assert len(set(commands)) == nodes


def test_wait_for_ranks_starts_only_when_every_rank_has_an_address(built: dict[str, Path]) -> None:
    pod = _find(_docs(built["multinode"]), "Job", "trainer")["spec"]["template"]
    names = [c["name"] for c in pod["spec"]["initContainers"]]
    # First, so that the timeout measures scheduling, not the wait for data.
    assert names == ["wait-for-ranks", "wait-for-data", "wait-for-gateway"]
    (init,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "wait-for-ranks"]
    env = _rank_env(init, 0)
    assert env["NNODES"] == str(
        _find(_docs(built["multinode"]), "Job", "trainer")["spec"]["completions"]
    )
    assert env["TRIVIA_RANK_HOST"].format(rank=0) == "trainer-0.trainer"
    script = init["command"][2]
    # Every rank resolvable: go on.
    ok = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **env, "NNODES": "3", "TRIVIA_RANK_HOST": "127.0.0.{rank}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "all 3 ranks scheduled"
    # A rank that never gets an address: give up, failing the Job.
    stuck = subprocess.run(
        [sys.executable, "-c", script],
        env={
            **os.environ,
            **env,
            "NNODES": "2",
            "TRIVIA_RANK_HOST": "trainer-{rank}.trainer.invalid",
            "TRIVIA_RANKS_TIMEOUT_S": "0",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stuck.returncode == 1
    assert stuck.stdout.splitlines()[-1].startswith("ranks not scheduled in time:")
