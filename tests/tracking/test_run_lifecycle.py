"""`caloray.tracking.Run`: experiment, params, finite metrics, artifacts, status, error tag, nesting."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from caloray.tracking.report import log_report
from caloray.tracking.run import ERROR_TAG, Run


def _run(uri: str, run_id: str):
    return MlflowClient(tracking_uri=uri).get_run(run_id)


def test_params_flattened_and_batched_metrics_finite_only(store, tmp_path):
    params = {"model": {"kind": "flow", "kwargs": {"hidden": [8, 8]}}, "wide": {f"p{i}": i for i in range(250)}}
    with Run.start("exp", "one", tmp_path, tracking_uri=store, params=params, tags={"caloray.role": "x"}) as run:
        logged = run.log_metrics({"a": 1.5, "nan": float("nan"), "inf": float("inf"), "none": None, "b": 2})
        run.log_metrics({"curve": 3.0}, step=7)
        run.log_metrics({"calibrate.50GeV.mode": 0.98, "calibrate.2.5GeV.mode": 1.01}, per_energy=True)
        (tmp_path / "a.txt").write_text("a")
        (tmp_path / "plots").mkdir()
        (tmp_path / "plots" / "p.txt").write_text("p")
        run.log_artifacts([tmp_path / "a.txt", tmp_path / "plots", tmp_path / "missing.txt"])
    assert logged == {"a": 1.5, "b": 2.0}
    got = _run(store, run.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "one" and got.data.tags["caloray.role"] == "x"
    assert got.data.params["model.kind"] == "flow" and got.data.params["model.kwargs.hidden"] == "[8, 8]"
    assert len([k for k in got.data.params if k.startswith("wide.")]) == 250  # more than one batch of 100
    assert set(got.data.metrics) == {"a", "b", "curve", "calibrate.mode"}
    history = MlflowClient(tracking_uri=store).get_metric_history(run.run_id, "calibrate.mode")
    assert sorted((m.step, m.value) for m in history) == [(2500, 1.01), (50000, 0.98)]
    assert [m.step for m in MlflowClient(tracking_uri=store).get_metric_history(run.run_id, "curve")] == [7]
    artifacts = {a.path for a in MlflowClient(tracking_uri=store).list_artifacts(run.run_id)}
    assert artifacts == {"a.txt", "plots"}


def test_local_store_keeps_artifacts_in_the_output_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with Run.start("local", "r", tmp_path) as run:
        pass
    assert run.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    experiment = MlflowClient(tracking_uri=run.tracking_uri).get_experiment(run.experiment_id)
    assert experiment.artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()


def test_exception_fails_the_run_with_the_error_and_ctrl_c_kills_it(store, tmp_path):
    with pytest.raises(ValueError, match="bad row 3"), Run.start("exp", "boom", tmp_path, tracking_uri=store) as run:
        raise ValueError("bad row 3")
    failed = _run(store, run.run_id)
    assert failed.info.status == "FAILED" and failed.data.tags[ERROR_TAG] == "ValueError: bad row 3"
    with pytest.raises(KeyboardInterrupt), Run.start("exp", "ctrl-c", tmp_path, tracking_uri=store) as run:
        raise KeyboardInterrupt
    assert _run(store, run.run_id).info.status == "KILLED"
    run = Run.start("exp", "twice", tmp_path, tracking_uri=store)
    assert run.finish("FAILED") == "FAILED" and run.finish() == "FAILED"  # ending twice keeps the first status
    with pytest.raises(Exception, match="NOPE"):
        Run.start("exp", "bad", tmp_path, tracking_uri=store).finish("NOPE")


def test_children_and_runs_started_inside_nest_are_nested(store, tmp_path):
    with Run.start("exp", "pipeline", tmp_path, tracking_uri=store) as parent:
        with parent.child("member-00", params={"member": {"seed": 3}}) as member:
            pass
        with parent.nest():
            with Run.start("exp", "stage", tmp_path, tracking_uri=store) as stage:
                pass
            _, report_id = log_report(tmp_path, "other-exp", "validate", params={"a": 1}, metrics={"m": 1.0},
                                      tracking_uri=store)
            with Run.start("exp", "elsewhere", tmp_path, tracking_uri=f"sqlite:///{tmp_path / 'other.db'}") as other:
                pass  # another store: its runs cannot point at this parent
        with Run.start("exp", "after", tmp_path, tracking_uri=store) as after:
            pass
    parent_tag = "mlflow.parentRunId"
    assert _run(store, member.run_id).data.tags[parent_tag] == parent.run_id
    assert _run(store, member.run_id).data.params["member.seed"] == "3"
    assert _run(store, stage.run_id).data.tags[parent_tag] == parent.run_id
    assert _run(store, report_id).data.tags[parent_tag] == parent.run_id
    assert parent_tag not in _run(other.tracking_uri, other.run_id).data.tags
    assert parent_tag not in _run(store, after.run_id).data.tags
    assert parent_tag not in _run(store, parent.run_id).data.tags
