"""The end-to-end pipeline's MLflow runs: every stage's run is a child of the `pipeline` run.

The stages are replaced by stand-ins that open their runs the way the real ones do (a `Run` in the pipeline's
store and experiment, and a validation report), so this checks the driver's wiring in seconds.
"""

from __future__ import annotations

import pytest
import yaml
from mlflow.tracking import MlflowClient

import caloray.workflows.pipeline as driver
from caloray.config import from_dict
from caloray.errors import ConfigError
from caloray.tracking.report import log_report
from caloray.tracking.run import Run
from caloray.workflows import WORKFLOWS
from caloray.workflows.pipeline import PipelineConfig, run_pipeline


@pytest.fixture
def stages(monkeypatch, tmp_path):
    """Stand-in stages; `fail_at` names a stage that raises."""
    state = {"fail_at": None}

    def check(name):
        if state["fail_at"] == name:
            raise ConfigError(f"{name}: bad input")

    def train(name, train, data, out, uri, experiment, *, resume, gpu):
        check("train")
        with Run.start(experiment, f"train-{name}", out / name, tracking_uri=uri):
            return f"{name}:1", {f"train.{name}.final_val_loss_mean": 0.5}

    def generate(config, generator, flow1, out, uri):
        with Run.start(config.experiment, "generate", out / "generated", tracking_uri=uri) as run:
            return [], {"metrics": {"generate.n_showers": 10.0}, "run_id": run.run_id, "validation_passed": None}

    def validate(config, candidate, out, uri):
        check("validate")
        log_report(out / "validation", config.experiment, "validate", params={"n": 1}, metrics={"p": 0.5},
                   tracking_uri=uri)
        return {"validate.n_tests": 1.0, "validate.min_p_value": 0.5}

    monkeypatch.setattr(driver, "stage_simulate", lambda config, out: {"train": [], "calibration": [],
                                                                               "superres": []})
    monkeypatch.setattr(driver, "stage_ingest", lambda config, files, out: {"ingest.n_showers": 4.0})
    monkeypatch.setattr(driver, "stage_train", train)
    monkeypatch.setattr(driver, "stage_generate", generate)
    monkeypatch.setattr(driver, "stage_validate", validate)
    monkeypatch.setattr(driver, "stage_calibrate", lambda *a: {"calibrate.50GeV.mode": 0.98, "calibrate.nan": None})
    monkeypatch.setattr(driver, "stage_superres", lambda *a: {"superres.n_showers": 2.0})
    return state


def _config(tmp_path) -> PipelineConfig:
    data = yaml.safe_load(WORKFLOWS["demo"].default_config.read_text())
    data["tracking_uri"] = f"sqlite:///{tmp_path / 'store.db'}"
    return from_dict(PipelineConfig, data, where=str(WORKFLOWS["demo"].default_config))


def test_stage_runs_are_children_of_the_pipeline_run(stages, tmp_path):
    config = _config(tmp_path)
    summary = run_pipeline(config, tmp_path / "out")
    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment).experiment_id
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    pipeline = runs.pop("pipeline")
    assert pipeline.info.run_id == summary["pipeline_run_id"] and pipeline.info.status == "FINISHED"
    assert set(runs) == {"train-flow1", "train-generator", "train-superres", "generate", "validate"}
    assert {name: r.data.tags.get("mlflow.parentRunId") for name, r in runs.items()} == dict.fromkeys(
        runs, pipeline.info.run_id)
    assert pipeline.data.tags["caloray.registered.generator"] == "generator:1"
    assert summary["metrics"]["calibrate.50GeV.mode"] == 0.98 and "calibrate.nan" not in summary["metrics"]
    history = client.get_metric_history(pipeline.info.run_id, "calibrate.mode")
    assert [(m.step, m.value) for m in history] == [(50000, 0.98)]
    assert {"pipeline.json", "summary.txt"} <= {a.path for a in client.list_artifacts(pipeline.info.run_id)}


def test_a_failing_stage_fails_the_pipeline_run_with_the_error(stages, tmp_path):
    stages["fail_at"] = "validate"
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match="validate: bad input"):
        run_pipeline(config, tmp_path / "out")
    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment).experiment_id
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}
    pipeline = runs["pipeline"]
    assert pipeline.info.status == "FAILED"
    assert pipeline.data.tags["caloray.error"] == "ConfigError: validate: bad input"
    assert runs["generate"].data.tags["mlflow.parentRunId"] == pipeline.info.run_id
    assert runs["generate"].info.status == "FINISHED"
