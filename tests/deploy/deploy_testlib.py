"""Helpers of the deploy tests: repository paths, manifest loading, strict CRD schema validation."""

from __future__ import annotations

import copy
import functools
import importlib
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
JOBS = REPO / "jobs"
# The KubeRay CRDs: next to the checkout (shared/data/kuberay), or where CALORAY_KUBERAY_CRDS points (a worktree).
CRD_DIR = Path(os.environ.get("CALORAY_KUBERAY_CRDS") or REPO.parent / "shared" / "data" / "kuberay")
IMAGE_ROOT = "/app"  # where deploy/docker/Dockerfile puts the repository's jobs/ (WORKDIR)
COMPOSE = DEPLOY / "mlflow" / "docker-compose.yaml"
HELM_VALUES = DEPLOY / "kuberay" / "operator-values.yaml"
# YAML under deploy/ that is not a Kubernetes object: compose file, Helm values, kustomizations
NOT_KUBERNETES = {COMPOSE, HELM_VALUES, *DEPLOY.rglob("kustomization.yaml")}
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
}


def yaml_files() -> list[Path]:
    """Every YAML file under deploy/ and jobs/."""
    return sorted(p for root in (DEPLOY, JOBS) for p in root.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_docs(path: Path) -> list[Any]:
    """All YAML documents of a file (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    """(file, object) for every Kubernetes object under deploy/ (compose file and Helm values are not)."""
    return [(p, d) for p in yaml_files() if p.is_relative_to(DEPLOY) and p not in NOT_KUBERNETES
            for d in load_docs(p)]


def objects_of_kind(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, d in k8s_objects() if d.get("kind") == kind]


def _strict(node: Any) -> Any:
    """Close every object schema that lists its properties (kubectl's strict field validation)."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@functools.cache
def _crd(kind: str) -> dict[str, Any]:
    """The CRD document of `kind` (parsed once; libyaml when available, the files are large)."""
    path = CRD_DIR / CRD_FILES[kind]
    if not path.is_file():
        pytest.skip(f"KubeRay CRD {path} not found (the shared data folder is not mounted)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)


@functools.cache
def crd_schema(kind: str, version: str = "v1", *, strict: bool = True) -> dict[str, Any]:
    """The `openAPIV3Schema` of `kind` at `version` from the shared KubeRay CRDs (closed when `strict`)."""
    crd = _crd(kind)
    assert crd["spec"]["names"]["kind"] == kind
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert entry["served"], f"{kind} {version} is not served by this CRD"
    schema = copy.deepcopy(entry["schema"]["openAPIV3Schema"])
    return _strict(schema) if strict else schema


def schema_errors(obj: dict[str, Any], kind: str | None = None) -> list[str]:
    """Violations of `obj` against its CRD schema, as 'path: message' lines (empty when valid)."""
    import jsonschema

    kind = kind or obj["kind"]
    version = obj["apiVersion"].split("/")[-1]
    validator = jsonschema.Draft7Validator(crd_schema(kind, version))
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def ray_cluster_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The RayCluster spec(s) a KubeRay object carries (itself, a RayJob's, a RayCronJob's template's)."""
    spec = obj.get("spec", {})
    if obj["kind"] == "RayCluster":
        yield spec
    elif obj["kind"] == "RayJob" and "rayClusterSpec" in spec:
        yield spec["rayClusterSpec"]
    elif obj["kind"] == "RayCronJob" and "rayClusterSpec" in spec.get("jobTemplate", {}):
        yield spec["jobTemplate"]["rayClusterSpec"]


def ray_job_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The RayJob spec(s) of a RayJob or of a RayCronJob's jobTemplate."""
    if obj["kind"] == "RayJob":
        yield obj["spec"]
    elif obj["kind"] == "RayCronJob":
        yield obj["spec"]["jobTemplate"]


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, pod spec) of every pod template in a Kubernetes or KubeRay object."""
    kind = obj["kind"]
    if kind == "Pod":
        yield kind, obj["spec"]
    if kind in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        yield kind, obj["spec"]["template"]["spec"]
    for cluster in ray_cluster_specs(obj):
        yield f"{kind}/head", cluster["headGroupSpec"]["template"]["spec"]
        for group in cluster.get("workerGroupSpecs", []):
            yield f"{kind}/{group['groupName']}", group["template"]["spec"]


def submitter_pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, pod spec) of a RayJob's (or RayCronJob template's) `ray job submit` pod, where one is set."""
    for spec in ray_job_specs(obj) if obj["kind"] in ("RayJob", "RayCronJob") else ():
        if "submitterPodTemplate" in spec:
            yield f"{obj['kind']}/submitter", spec["submitterPodTemplate"]["spec"]


def containers(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, container) of every container and init container of `obj` (RayJob submitters included)."""
    for label, pod in [*pod_specs(obj), *submitter_pod_specs(obj)]:
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            yield f"{label}/{c['name']}", c


def load_job_module(name: str) -> ModuleType:
    """Import jobs/NAME.py the way `python jobs/NAME.py` sees its siblings (jobs/ on sys.path)."""
    if str(JOBS) not in sys.path:
        sys.path.append(str(JOBS))
    return importlib.import_module(name)


def entrypoint_argv(entrypoint: str) -> list[str]:
    """A RayJob entrypoint split like a shell would (no pipes or chains expected)."""
    argv = shlex.split(entrypoint)
    assert not {"&&", "||", ";", "|"} & set(argv), f"keep entrypoints to one command: {entrypoint!r}"
    return argv


def image_path_to_repo(path: str) -> Path:
    """A path inside the caloray image (/app/...) → the same file in this checkout."""
    assert path.startswith(IMAGE_ROOT + "/"), f"{path}: expected an absolute path under {IMAGE_ROOT}"
    return REPO / path.removeprefix(IMAGE_ROOT + "/")
