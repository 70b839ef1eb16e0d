"""KubeRay manifests against the CRDs' openAPIV3Schema (jsonschema, closed objects) and against each other."""

from __future__ import annotations

import copy
import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import ray
from deploy_testlib import (
    DEPLOY,
    containers,
    crd_schema,
    load_docs,
    objects_of_kind,
    pod_specs,
    ray_cluster_specs,
    ray_job_specs,
    schema_errors,
)

KUBERAY = [(p, o) for kind in ("RayCluster", "RayJob", "RayCronJob") for p, o in objects_of_kind(kind)]
IDS = [f"{p.name}:{o['kind']}" for p, o in KUBERAY]
MOUNT = "/mnt/caloray"
# The caloray image's repositories (CPU and CUDA torch builds; registry and tags set in deploy/images/).
CALORAY_IMAGES = {"registry.example.com/caloray/caloray-cpu", "registry.example.com/caloray/caloray-gpu"}


def _cluster() -> dict[str, Any]:
    ((_, obj),) = objects_of_kind("RayCluster")
    return obj


WORKFLOWS = {"simulate", "train", "calibrate", "validate", "superres", "generate", "pipeline"}


def test_each_kind_is_deployed() -> None:
    kinds = sorted(o["kind"] for _, o in KUBERAY)
    assert kinds == ["RayCluster", "RayCronJob", *["RayJob"] * len(WORKFLOWS)]


def test_every_workflow_has_a_rayjob() -> None:
    """One RayJob per workflow (all of them validated against the CRD schema above): rayjob-NAME.yaml."""
    names = {p.stem.removeprefix("rayjob-") for p, _ in objects_of_kind("RayJob")}
    assert names == WORKFLOWS


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_validates_against_crd_schema(path: Path, obj: dict) -> None:
    assert obj["apiVersion"] == "ray.io/v1"
    assert schema_errors(obj) == [], f"{path} does not validate against the {obj['kind']} CRD"


def test_raycronjob_crd_fields() -> None:
    """The RayCronJob CRD exists here; its spec is {schedule, timeZone, suspend, jobTemplate: RayJobSpec}."""
    spec = crd_schema("RayCronJob", strict=False)["properties"]["spec"]
    assert set(spec["required"]) == {"jobTemplate", "schedule"}
    assert set(spec["properties"]) == {"jobTemplate", "schedule", "suspend", "timeZone"}
    job_spec = crd_schema("RayJob", strict=False)["properties"]["spec"]["properties"]
    assert set(spec["properties"]["jobTemplate"]["properties"]) == set(job_spec)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda o: o["spec"]["workerGroupSpecs"][0].update(maxReplica=3), "maxReplica"),
        (lambda o: o["spec"]["workerGroupSpecs"][0].update(minReplicas="1"), "is not of type 'integer'"),
        (lambda o: o["spec"].pop("headGroupSpec"), "'headGroupSpec' is a required property"),
        (lambda o: o["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0].update(imag="x"), "imag"),
        (lambda o: o["spec"]["autoscalerOptions"].update(upscalingMode="Fast"), "is not one of"),
    ],
    ids=["unknown-key", "wrong-type", "missing-required", "unknown-container-key", "bad-enum"],
)
def test_validator_catches_mistakes(mutate: Any, needle: str) -> None:
    """The strict validator is not vacuous: typos, wrong types, missing fields and bad enums fail."""
    broken = copy.deepcopy(_cluster())
    mutate(broken)
    errors = schema_errors(broken)
    assert any(needle in e for e in errors), errors


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_ray_version_matches_installed_ray(path: Path, obj: dict) -> None:
    for cluster in ray_cluster_specs(obj):
        assert cluster["rayVersion"] == ray.__version__, f"{path}: image and rayVersion must agree"


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_autoscaling_worker_groups(path: Path, obj: dict) -> None:
    for cluster in ray_cluster_specs(obj):
        assert cluster["enableInTreeAutoscaling"] is True
        groups = cluster["workerGroupSpecs"]
        names = [g["groupName"] for g in groups]
        assert len(set(names)) == len(names) and "cpu" in names
        for g in groups:
            replicas = g.get("replicas", g["minReplicas"])
            assert 0 <= g["minReplicas"] <= replicas <= g["maxReplicas"], g["groupName"]
            assert g["maxReplicas"] >= 1


def _limits(container: dict) -> dict:
    return container.get("resources", {}).get("limits", {})


def test_cluster_has_cpu_and_gpu_groups() -> None:
    groups = {g["groupName"]: g for g in _cluster()["spec"]["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    (gpu,) = groups["gpu"]["template"]["spec"]["containers"]
    (cpu,) = groups["cpu"]["template"]["spec"]["containers"]
    assert int(_limits(gpu)["nvidia.com/gpu"]) >= 1
    assert "nvidia.com/gpu" not in _limits(cpu)
    assert groups["gpu"]["minReplicas"] == 0, "GPU nodes should scale from zero"
    assert gpu["image"].rsplit(":", 1)[0].endswith("-gpu") and cpu["image"].rsplit(":", 1)[0].endswith("-cpu")


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_every_ray_container_has_resources_and_image(path: Path, obj: dict) -> None:
    images = set()
    for label, c in containers(obj):
        assert {"cpu", "memory"} <= _limits(c).keys(), f"{path} {label}: set cpu and memory limits"
        images.add(c["image"].rsplit(":", 1)[0])
        assert not c["image"].endswith(":latest")
    assert images <= CALORAY_IMAGES and "registry.example.com/caloray/caloray-cpu" in images, f"{path}: {images}"


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_mlflow_uri_and_shared_volume_on_every_ray_pod(path: Path, obj: dict) -> None:
    (pvc,) = [o for _, o in objects_of_kind("PersistentVolumeClaim")]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    for label, pod in pod_specs(obj):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v}
        for c in pod["containers"]:
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert env.get("MLFLOW_TRACKING_URI") == _mlflow_service_url(), f"{path} {label}"
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert claims.get(mounts.get(MOUNT)) == pvc["metadata"]["name"], f"{path} {label}: {MOUNT}"
        assert pod["securityContext"]["runAsNonRoot"] is True


def _mlflow_service_url() -> str:
    (service,) = [o for p, o in objects_of_kind("Service") if o["metadata"]["name"] == "mlflow"]
    (port,) = service["spec"]["ports"]
    return f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port['port']}"


def test_mlflow_server_accepts_the_tracking_host() -> None:
    """MLflow's DNS-rebinding guard must allow the Host header Ray pods (and port-forward) send."""
    (deployment,) = [d for d in load_docs(DEPLOY / "mlflow" / "mlflow.yaml") if d["kind"] == "Deployment"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    (flag,) = [a for a in server["args"] if a.startswith("--allowed-hosts=")]
    allowed = flag.split("=", 1)[1].split(",")
    for host in (urlsplit(_mlflow_service_url()).netloc, "localhost:5000"):
        assert any(fnmatch.fnmatch(host, pattern) for pattern in allowed), host


def _group_templates(cluster: dict) -> dict[str, Any]:
    """The head group (whole) and each worker group's pod template, by group name."""
    workers = {g["groupName"]: g["template"] for g in cluster["workerGroupSpecs"]}
    return {"head": cluster["headGroupSpec"], **workers}


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_job_clusters_match_the_long_running_cluster(path: Path, obj: dict) -> None:
    """RayJob/RayCronJob clusters reuse raycluster.yaml's head and group templates (only sizes differ)."""
    reference = _group_templates(_cluster()["spec"])
    for cluster in ray_cluster_specs(obj):
        for name, template in _group_templates(cluster).items():
            assert template == reference[name], f"{path}: group {name} drifted from raycluster.yaml"
        assert cluster["autoscalerOptions"] == _cluster()["spec"]["autoscalerOptions"]


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_jobs_clean_up_after_themselves(path: Path, obj: dict) -> None:
    for spec in ray_job_specs(obj):
        assert "rayClusterSpec" in spec and "clusterSelector" not in spec
        assert spec["shutdownAfterJobFinishes"] is True
        assert spec["ttlSecondsAfterFinished"] > 0
        assert spec["activeDeadlineSeconds"] > 0


def test_cron_schedule() -> None:
    ((_, cron),) = objects_of_kind("RayCronJob")
    fields = cron["spec"]["schedule"].split()
    assert len(fields) == 5, "standard five-field cron expression"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["jobTemplate"]["activeDeadlineSeconds"] < 7 * 86400, "a run must end before the next"


def _gpu_job(spec: dict) -> bool:
    argv = spec["entrypoint"].split()
    sets = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--set"]
    if "--gpu" in argv or any(s.split("=")[0].split(".")[-1] in ("gpu", "use_gpu", "require_gpu")
                              and s.endswith("=true") for s in sets):
        return True
    if argv[2] == "production":
        config = Path(str(DEPLOY.parent) + argv[argv.index("--config") + 1].removeprefix("/app"))
        return bool(load_docs(config)[0].get("gpu"))
    return False


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=IDS)
def test_gpu_jobs_start_with_gpus(path: Path, obj: dict) -> None:
    """caloray.train sizes (and refuses) its run from the GPUs present at start: no scaling from zero."""
    for spec in ray_job_specs(obj):
        groups = {g["groupName"]: g for g in spec["rayClusterSpec"]["workerGroupSpecs"]}
        if _gpu_job(spec):
            assert groups["gpu"]["minReplicas"] >= 1, f"{path}: a GPU job needs GPU workers from the start"
        else:
            assert "gpu" not in groups, f"{path}: a CPU-only job should not carry a GPU group"
