"""No credentials in plain text: Kubernetes env from secretKeyRef, Secret templates hold placeholders only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deploy_testlib import COMPOSE, DEPLOY, JOBS, REPO, containers, k8s_objects, load_docs, objects_of_kind

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)
PLACEHOLDER = "REPLACE_ME"
# scheme://user:password@host with a literal password (no $(VAR) / ${VAR} substitution)
URI_WITH_PASSWORD = re.compile(r"[a-z0-9+.-]+://[^\s/:@]+:(?![$][({])[^\s/@]+@", re.I)
TEXT_SUFFIXES = (".yaml", ".yml", ".md", ".py", ".example", ".txt", ".dockerignore", "")
TEXT_FILES = sorted(
    p for root in (DEPLOY, JOBS) for p in root.rglob("*")
    if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
)
OBJECTS = k8s_objects()


@pytest.mark.parametrize(("path", "obj"), OBJECTS, ids=[f"{p.name}:{o['kind']}" for p, o in OBJECTS])
def test_secret_env_comes_from_secret_refs(path: Path, obj: dict) -> None:
    secrets = {o["metadata"]["name"]: set(o["stringData"]) for _, o in objects_of_kind("Secret")}
    for label, c in containers(obj):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if SECRET_NAME.search(env["name"]):
                assert ref is not None, f"{path} {label}: {env['name']} must come from a secretKeyRef"
            if ref is not None:
                assert ref["key"] in secrets.get(ref["name"], set()), f"{path} {label}: unknown secret {ref}"
            value = str(env.get("value", ""))
            assert not URI_WITH_PASSWORD.search(value), f"{path} {label}: {env['name']} embeds a password"


def test_secret_templates_hold_placeholders_only() -> None:
    secrets = objects_of_kind("Secret")
    assert secrets, "the Secret template is missing"
    for path, secret in secrets:
        assert "data" not in secret, f"{path}: use stringData placeholders, never encoded values"
        assert set(secret["stringData"].values()) == {PLACEHOLDER}, f"{path}: real values in a template"


def test_compose_credentials_are_interpolated() -> None:
    (compose,) = load_docs(COMPOSE)
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) or "USER" in key:
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*)?\}", str(value)), f"compose {name}: {key} is literal"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"compose {name}: publish on localhost only"


def test_env_example_is_empty() -> None:
    for line in (DEPLOY / "mlflow" / "mlflow.env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            assert not (SECRET_NAME.search(key) and value), f"mlflow.env.example: {key} has a value"


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_uri_with_literal_password(path: Path) -> None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert not URI_WITH_PASSWORD.search(line), f"{path}:{number} has a URI with a literal password"
