"""MLflow tracking of an ensemble: nested runs, params, per-epoch metrics, artifacts, registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from caloray.models import Ensemble
from caloray.tracking import (
    RegistryError,
    load_registered,
    local_tracking_uri,
    register_ensemble,
)

REGISTRY_NAME = "test-flow-ensemble"


@pytest.fixture(scope="module")
def client(tracked_ensemble) -> MlflowClient:
    return MlflowClient(
        tracking_uri=tracked_ensemble.tracking_uri, registry_uri=tracked_ensemble.tracking_uri
    )


def _member_runs(client, result):
    parent = client.get_run(result.mlflow_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
    )
    return parent, sorted(runs, key=lambda run: int(run.data.tags["caloray.member"]))


def test_default_store_is_sqlite_in_output_dir(tracked_ensemble):
    assert tracked_ensemble.tracking_uri == local_tracking_uri(tracked_ensemble.output_dir)
    assert (tracked_ensemble.output_dir / "mlflow.db").is_file()
    assert (tracked_ensemble.output_dir / "mlartifacts").is_dir()


def test_members_trained_concurrently(tracked_ensemble):
    """With 2 CPUs and 1-CPU members, both `trainer.fit()` calls were running at the same time."""
    first, second = tracked_ensemble.members
    assert first.started_at < second.finished_at and second.started_at < first.finished_at


def test_member_runs_nested_with_params_and_epoch_metrics(client, tracked_ensemble):
    parent, members = _member_runs(client, tracked_ensemble)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["model.kind"] == "layer-energy-flow"
    assert parent.data.params["ensemble.members"] == "2"
    assert parent.data.params["data.n_voxels"] == "1008"
    assert "ensemble_final_val_loss_mean" in parent.data.metrics
    assert [run.data.tags["caloray.member"] for run in members] == ["0", "1"]
    seeds = set()
    for member, run in zip(tracked_ensemble.members, members, strict=True):
        assert run.info.status == "FINISHED"
        assert run.data.params["member.seed"] == str(member.seed)
        assert run.data.params["optimizer.lr"] == "0.001"
        seeds.add(member.seed)
        for key in ("train_loss", "val_loss", "lr"):
            steps = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in sorted(steps, key=lambda m: m.step)] == [1, 2]
        val = sorted(client.get_metric_history(run.info.run_id, "val_loss"), key=lambda m: m.step)
        assert [m.value for m in val] == pytest.approx([row["val_loss"] for row in member.history])
    assert len(seeds) == 2


def test_member_and_ensemble_artifacts(client, tracked_ensemble):
    parent, members = _member_runs(client, tracked_ensemble)
    local = Path(client.download_artifacts(members[0].info.run_id, ""))
    assert {"checkpoint", "loss_curve.png", "model_config.json", "geometry.json"} <= {
        p.name for p in local.iterdir()
    }
    assert {p.name for p in (local / "checkpoint").iterdir()} >= {
        "model.pt",
        "train_state.pt",
        "history.json",
    }
    assert (local / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    described = json.loads((local / "model_config.json").read_text())
    assert described["kind"] == "layer-energy-flow" and described["config"]["transforms"] == 1
    assert described["preprocessing"]["layer_transform"]["type"] == "Log10Scale"
    assert json.loads((local / "geometry.json").read_text())["name"] == "ecal-hcal"

    ensemble_dir = Path(client.download_artifacts(parent.info.run_id, "ensemble"))
    manifest = json.loads((ensemble_dir / "manifest.json").read_text())
    assert manifest["member_kind"] == "layer-energy-flow" and len(manifest["members"]) == 2
    assert manifest["members"][1]["mlflow_run_id"] == members[1].info.run_id
    assert (ensemble_dir / "ensemble.pt").is_file() and (ensemble_dir / "train-config.yaml").is_file()


def test_registered_ensemble_loads_in_fresh_process(tracked_ensemble, tmp_path):
    assert tracked_ensemble.registered == (REGISTRY_NAME, 1)
    out = tmp_path / "weights.pt"
    script = (
        "import sys, torch\n"
        "from caloray.tracking import load_registered\n"
        "ensemble = load_registered(sys.argv[1], int(sys.argv[2]), tracking_uri=sys.argv[3])\n"
        "torch.save({'n': len(ensemble), 'kind': ensemble.member_kind, 'state': ensemble.state_dict()}, sys.argv[4])\n"
    )
    uri = tracked_ensemble.tracking_uri
    subprocess.run([sys.executable, "-c", script, REGISTRY_NAME, "1", uri, str(out)], check=True, timeout=120)
    loaded = torch.load(out, weights_only=True)
    assert (loaded["n"], loaded["kind"]) == (2, "layer-energy-flow")
    for k, member in enumerate(tracked_ensemble.load_members()):
        for name, tensor in member.state_dict().items():
            assert torch.equal(loaded["state"][f"members.{k}.{name}"], tensor), name


def test_latest_version_and_registry_errors(client, tracked_ensemble, tmp_path, monkeypatch):
    uri = tracked_ensemble.tracking_uri
    source = client.get_model_version_download_uri(REGISTRY_NAME, "1")
    assert register_ensemble(client, REGISTRY_NAME, source=source, run_id=tracked_ensemble.mlflow_run_id) == 2
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    ensemble = load_registered(REGISTRY_NAME, "latest", tracking_uri=uri, member_kind="layer-energy-flow")
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 2
    assert not list(scratch.iterdir()), "the downloaded artifact folder must not outlive the load"
    with pytest.raises(
        RegistryError, match=rf"no registered model named 'nope'; registered models: {REGISTRY_NAME}"
    ):
        load_registered("nope", tracking_uri=uri)
    with pytest.raises(RegistryError, match=r"has no version 7; versions: \[1, 2\]"):
        load_registered(REGISTRY_NAME, 7, tracking_uri=uri)
    with pytest.raises(RegistryError, match="holds 'layer-energy-flow' members, expected 'voxel-flow'"):
        load_registered(REGISTRY_NAME, 1, tracking_uri=uri, member_kind="voxel-flow")


def test_training_registers_a_pyfunc_model_with_candidate_alias(client, tracked_ensemble):
    """The version is a logged MLflow model (models:/<id>) of the parent run, aliased @candidate, described
    and tagged; the run carries the source and git-revision tags."""
    version = client.get_model_version_by_alias(REGISTRY_NAME, "candidate")
    assert int(version.version) == 1 and version.source.startswith("models:/m-")
    assert version.tags["caloray.model_kind"] == "layer-energy-flow" and version.tags["caloray.members"] == "2"
    assert version.tags["caloray.pyfunc_task"] == "calibrate"
    assert "2 × layer-energy-flow on geometry ecal-hcal (1008 voxels)" in version.description
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == tracked_ensemble.mlflow_run_id
    parent = client.get_run(tracked_ensemble.mlflow_run_id)
    assert parent.data.tags["mlflow.source.git.commit"] and parent.data.tags["caloray.registered"] == \
        f"{REGISTRY_NAME}:1"
    described = Path(client.download_artifacts(parent.info.run_id, "ensemble/model_config.json")).read_text()
    assert len(described.splitlines()) < 40, "the 1008-entry voxel_layer list must stay on one line"
