"""Every YAML file under deploy/ and jobs/ parses; every Kubernetes object is well-formed and namespaced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deploy_testlib import COMPOSE, REPO, k8s_objects, load_docs, yaml_files

DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CLUSTER_SCOPED = {"Namespace"}


def test_there_are_manifests() -> None:
    names = {p.relative_to(REPO).as_posix() for p in yaml_files()}
    for expected in (
        "deploy/kuberay/raycluster.yaml",
        "deploy/kuberay/rayjob-train.yaml",
        "deploy/kuberay/rayjob-simulate.yaml",
        "deploy/kuberay/raycronjob-production.yaml",
        "deploy/mlflow/mlflow.yaml",
        "deploy/mlflow/postgres.yaml",
        "deploy/mlflow/docker-compose.yaml",
    ):
        assert expected in names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_yaml_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} holds no YAML document"
    assert all(isinstance(d, dict) for d in docs), f"{path}: every document must be a mapping"


@pytest.mark.parametrize(
    ("path", "obj"), k8s_objects(), ids=[f"{p.name}:{o.get('kind')}" for p, o in k8s_objects()]
)
def test_kubernetes_object_header(path: Path, obj: dict) -> None:
    assert {"apiVersion", "kind", "metadata"} <= obj.keys(), f"{path}: not a Kubernetes object"
    name = obj["metadata"].get("name", "")
    assert DNS_1123.match(name) and len(name) <= 63, f"{path}: bad metadata.name {name!r}"
    if obj["kind"] not in CLUSTER_SCOPED:
        assert obj["metadata"].get("namespace") == "caloray", f"{path}: {name} must live in namespace caloray"


def test_compose_file_shape() -> None:
    (compose,) = load_docs(COMPOSE)
    assert {"postgres", "minio", "mlflow"} <= compose["services"].keys()
    assert "version" not in compose, "the compose `version` key is obsolete"
