"""Run lineage: dataset inputs of shower files, source/git tags, per-energy metric steps, readable JSON."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from mlflow.tracking import MlflowClient

from caloray.io.hdf5 import write_showers
from caloray.tracking import local_tracking_uri
from caloray.tracking.lineage import log_shower_inputs, source_tags
from caloray.tracking.params import energy_step, readable_json
from caloray.tracking.report import log_report


def _files(tmp_path, rows=(3, 5)):
    paths = []
    rng = np.random.default_rng(0)
    for i, n in enumerate(rows):
        path = tmp_path / "data" / f"shard-{i}.h5"
        path.parent.mkdir(exist_ok=True)
        write_showers(path, rng.random((n, 4)).astype(np.float32), rng.uniform(1e3, 1e4, n))
        paths.append(path)
    return paths


def test_shower_files_logged_as_dataset_input(tmp_path, monkeypatch):
    monkeypatch.setenv("CALORAY_GIT_REVISION", "abc1234")
    paths = _files(tmp_path)
    uri = local_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("lineage", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment, tags=source_tags("train")).info.run_id
    log_shower_inputs(client, run_id, [str(tmp_path / "data")], context="training", geometry="toy")
    run = client.get_run(run_id)
    assert run.data.tags["mlflow.source.git.commit"] == "abc1234" and run.data.tags["mlflow.source.name"] == "train"
    (entry,) = run.inputs.dataset_inputs
    assert {t.key: t.value for t in entry.tags}["mlflow.data.context"] == "training"
    profile = json.loads(entry.dataset.profile)
    expected = hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).hexdigest().encode() for p in paths))
    assert profile == {"rows": 8, "files": 2, "geometry": "toy", "sha256": expected.hexdigest()}
    assert entry.dataset.digest == expected.hexdigest()[:32]
    assert json.loads(entry.dataset.source)["uri"].endswith("data")


def test_report_logs_inputs_and_per_energy_steps(tmp_path):
    paths = _files(tmp_path, rows=(2,))
    metrics = {"flow.uniform.10GeV.mode": 0.99, "flow.uniform.50GeV.mode": 1.01, "n_tests": 4.0}
    uri, run_id = log_report(tmp_path, "report", "validate", params={"a": 1}, metrics=metrics,
                             inputs={"reference": paths}, geometry="toy")
    client = MlflowClient(tracking_uri=uri)
    history = sorted(client.get_metric_history(run_id, "flow.uniform.mode"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(10_000, 0.99), (50_000, 1.01)]
    assert client.get_run(run_id).data.metrics["n_tests"] == 4.0
    assert len(client.get_run(run_id).inputs.dataset_inputs) == 1


def test_energy_step_and_readable_json():
    assert energy_step("calibrate.50GeV.mode") == ("calibrate.mode", 50_000)
    assert energy_step("calibrate.0.5GeV.full_resolution") == ("calibrate.full_resolution", 500)
    assert energy_step("generate.n_showers") == ("generate.n_showers", 0)
    config = {"kind": "x", "config": {"voxel_layer": [0] * 500 + [1] * 508, "hidden": [64]}, "members": [{"a": 1}]}
    text = readable_json(config)
    assert json.loads(text) == config and len(text.splitlines()) < 15
