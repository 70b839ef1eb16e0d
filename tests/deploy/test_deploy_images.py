"""Images are set in one place (the kustomize component deploy/images/) with fixed, versioned tags."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_testlib import DEPLOY, containers, k8s_objects, load_docs

COMPONENT = DEPLOY / "images" / "kustomization.yaml"
KUSTOMIZATIONS = [DEPLOY / "kustomization.yaml", DEPLOY / "kuberay" / "kustomization.yaml"]
# A release tag: a version with at least major.minor (16.6, 0.1.0, 3.17.2) or MinIO's RELEASE.<timestamp>.
FIXED_TAG = re.compile(r"^(v?\d+\.\d+(\.\d+)?([-.][\w.]+)?|RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)$")


def _component_images() -> dict[str, dict[str, str]]:
    (component,) = load_docs(COMPONENT)
    assert component["kind"] == "Component"
    return {entry["name"]: entry for entry in component["images"]}


def _split(image: str) -> tuple[str, str]:
    assert "@" not in image, image
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{image}: no tag"
    return name, tag


def test_every_image_is_set_in_the_component() -> None:
    """Each container image of every manifest has its entry, and the manifests' defaults equal its tags."""
    entries = _component_images()
    used = set()
    for path, obj in k8s_objects():
        for label, c in containers(obj):
            name, tag = _split(c["image"])
            assert name in entries, f"{path} {label}: {name} is not in {COMPONENT.relative_to(DEPLOY)}"
            assert tag == entries[name]["newTag"], f"{path} {label}: tag {tag} differs from the component's"
            used.add(name)
    assert used == set(entries), "the component lists images no manifest uses"


def test_tags_are_fixed_releases() -> None:
    for name, entry in _component_images().items():
        assert "digest" in entry or FIXED_TAG.match(str(entry["newTag"])), f"{name}: moving tag {entry['newTag']}"
    for bad in ("latest", "16", "stable", "main"):
        assert not FIXED_TAG.match(bad)


def test_kustomizations_cover_every_manifest() -> None:
    """Both entry points include the component; together they list every object file but the Secret template."""
    listed = set()
    for kustomization in KUSTOMIZATIONS:
        (doc,) = load_docs(kustomization)
        assert (kustomization.parent / doc["components"][0]).resolve() == COMPONENT.parent
        listed |= {(kustomization.parent / r).resolve() for r in doc["resources"]}
    files = {p.resolve() for p, _ in k8s_objects()}
    assert files - listed == {(DEPLOY / "mlflow" / "secrets.template.yaml").resolve()}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with kustomize) is not installed")
def test_changing_the_component_changes_every_container(tmp_path: Path) -> None:
    """`kubectl kustomize` with another registry and tags: every container of both outputs follows."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    (component,) = load_docs(COMPONENT)
    for entry in component["images"]:
        entry["newName"] = "mirror.example.org/team/" + entry["name"].rsplit("/", 1)[-1]
        entry["newTag"] = "9.8.7"
    (copy / "images" / "kustomization.yaml").write_text(yaml.safe_dump(component))
    images = []
    for root in (copy, copy / "kuberay"):
        rendered = subprocess.run(["kubectl", "kustomize", str(root)], capture_output=True, text=True, check=True)
        for obj in yaml.safe_load_all(rendered.stdout):
            images += [c["image"] for _, c in containers(obj)]
    assert len(images) == sum(1 for _, o in k8s_objects() for _ in containers(o))
    assert images and all(re.fullmatch(r"mirror\.example\.org/team/[\w-]+:9\.8\.7", i) for i in images), images
