"""The image recipe: python:3.11-slim, torch from the constraints pin, CUDA switch, non-root, `ray` inside."""

from __future__ import annotations

import re
from pathlib import Path

from deploy_testlib import DEPLOY, REPO

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
IGNORE = DEPLOY / "docker" / "Dockerfile.dockerignore"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [
        (m.group(1).upper(), m.group(2).strip())
        for line in text.splitlines()
        if (m := re.match(r"^\s*([A-Za-z]+)\s+(.*)$", line)) and not line.lstrip().startswith("#")
    ]


def build_args(path: Path) -> dict[str, str]:
    pairs = [a.split("=", 1) for i, a in instructions(path) if i == "ARG"]
    return {p[0]: p[1] if len(p) == 2 else "" for p in pairs}


def torch_pin(path: Path) -> str:
    (pin,) = [ln.strip() for ln in path.read_text().splitlines() if ln.strip().startswith("torch")]
    return pin


def test_base_image_and_user() -> None:
    ins = instructions(DOCKERFILE)
    froms = [a for i, a in ins if i == "FROM"]
    assert froms == ["${BASE_IMAGE}"] and build_args(DOCKERFILE)["BASE_IMAGE"] == "python:3.11-slim"
    users = [a for i, a in ins if i == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"


def test_torch_comes_from_the_constraints_pin() -> None:
    args = build_args(DOCKERFILE)
    assert args["CONSTRAINTS"] == "constraints.txt", "CPU image: the repository's single torch pin"
    assert "TORCH_INDEX_URL" in args, "build-arg to switch the torch wheel index (CPU → CUDA)"
    pip = [a for i, a in instructions(DOCKERFILE) if i == "RUN" and "pip install" in a]
    assert len(pip) == 2 and all('-c "${CONSTRAINTS}"' in a for a in pip), "both installs obey the pin"
    assert re.search(r"--index-url \"\$\{TORCH_INDEX_URL\}\".* torch$", pip[0]), "torch first, from the index"
    assert "torch==" not in DOCKERFILE.read_text(), "the pin lives in constraints files only"
    assert torch_pin(REPO / "constraints.txt") == torch_pin(DEPLOY / "constraints-gpu.txt"), "same release"


def test_copied_sources_exist_and_are_not_ignored() -> None:
    ignored = {ln.strip() for ln in IGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    for instruction, arguments in instructions(DOCKERFILE):
        if instruction == "COPY" and not arguments.startswith("--from"):
            *sources, _ = arguments.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert source.rstrip("/") not in ignored, f"COPY {source}: excluded by {IGNORE.name}"
    assert {".git", ".venv", "outputs"} <= ignored


def test_ray_and_jobs_in_image() -> None:
    text = DOCKERFILE.read_text()
    assert "import caloray, ray, torch, mlflow" in text, "the build checks the runtime imports"
    assert re.search(r"^COPY jobs \./jobs$", text, flags=re.M)
    assert re.search(r"^WORKDIR /app$", text, flags=re.M), "jobs at /app/jobs, as the manifests expect"
    assert "wget" in text, "KubeRay's exec probes need wget"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"ray[data,train,default]' in pyproject, "the `ray` CLI (head, workers, submitter) comes with it"


def test_mlflow_server_image_matches_client_release() -> None:
    from importlib.metadata import version

    args = build_args(DEPLOY / "mlflow" / "Dockerfile")
    assert args["MLFLOW_VERSION"] == version("mlflow"), "server and caloray's client on the same MLflow"
    pip = [a for i, a in instructions(DEPLOY / "mlflow" / "Dockerfile") if i == "RUN" and "pip install" in a]
    assert any('"mlflow[auth]==${MLFLOW_VERSION}"' in a for a in pip), "--app-name basic-auth needs Flask-WTF"
