"""The MLflow stack wires together: services select their pods, URIs name real services, env refs resolve."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from deploy_testlib import COMPOSE, DEPLOY, containers, k8s_objects, load_docs, objects_of_kind

MLFLOW = DEPLOY / "mlflow"
VAR_REF = re.compile(r"\$\((\w+)\)")


def _services() -> dict[str, dict]:
    return {o["metadata"]["name"]: o for _, o in objects_of_kind("Service")}


def _server_env() -> dict[str, str]:
    (deployment,) = [o for _, o in objects_of_kind("Deployment") if o["metadata"]["name"] == "mlflow"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in server["env"]}


OBJECTS = k8s_objects()


@pytest.mark.parametrize(("path", "obj"), OBJECTS, ids=[f"{p.name}:{o['kind']}" for p, o in OBJECTS])
def test_env_var_references_are_defined_earlier(path: Path, obj: dict) -> None:
    """Kubernetes expands $(VAR) only from variables listed before it in the same container."""
    for label, c in containers(obj):
        seen: set[str] = set()
        for env in c.get("env", []):
            for ref in VAR_REF.findall(str(env.get("value", ""))):
                assert ref in seen, f"{path} {label}: {env['name']} uses $({ref}) before it is defined"
            seen.add(env["name"])


def test_services_select_their_pods() -> None:
    workloads = [o for kind in ("Deployment", "StatefulSet") for _, o in objects_of_kind(kind)]
    for name, service in _services().items():
        selector = service["spec"]["selector"].items()
        templates = [w["spec"]["template"] for w in workloads]
        (pod,) = [t for t in templates if selector <= t["metadata"]["labels"].items()]
        ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"service {name}: no container port {port['targetPort']}"


def test_uris_name_real_services() -> None:
    env, services = _server_env(), _services()
    for key in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_S3_ENDPOINT_URL"):
        url = urlsplit(env[key])
        service = services[url.hostname.split(".")[0]]
        assert url.hostname.split(".")[1] == service["metadata"]["namespace"]
        assert url.port in {p["port"] for p in service["spec"]["ports"]}, key
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")


def test_compose_matches_the_cluster_setup() -> None:
    (compose,) = load_docs(COMPOSE)
    mlflow = compose["services"]["mlflow"]
    destination = mlflow["environment"]["MLFLOW_ARTIFACTS_DESTINATION"]
    assert destination == _server_env()["MLFLOW_ARTIFACTS_DESTINATION"]
    assert (DEPLOY.parent / mlflow["build"]["dockerfile"]).is_file()
    images = {compose["services"][s]["image"] for s in ("postgres", "minio")}
    k8s_images = {c["image"] for _, o in objects_of_kind("StatefulSet") for _, c in containers(o)}
    assert images == k8s_images, "compose and Kubernetes run the same database and object store"


def test_ensure_bucket_script() -> None:
    spec = importlib.util.spec_from_file_location("ensure_bucket", MLFLOW / "ensure_bucket.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.bucket_name("s3://mlflow/artifacts") == "mlflow"
    with pytest.raises(ValueError):
        module.bucket_name("/local/path")
    assert "COPY deploy/mlflow/ensure_bucket.py" in (MLFLOW / "Dockerfile").read_text()
