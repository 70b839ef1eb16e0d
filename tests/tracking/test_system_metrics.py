"""System metrics are opt-in with MLflow's own switch, and land on the run when enabled."""

from __future__ import annotations

import time

from mlflow.tracking import MlflowClient

from caloray.tracking.store import local_tracking_uri, start_system_metrics, stop_system_metrics


def _run(tmp_path) -> tuple[MlflowClient, str, str]:
    uri = local_tracking_uri(tmp_path)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("system-metrics")
    return client, client.create_run(experiment_id).info.run_id, uri


def test_off_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    client, run_id, uri = _run(tmp_path)
    assert start_system_metrics(run_id, uri) is None
    stop_system_metrics(None)  # nothing to stop
    assert not any(key.startswith("system/") for key in client.get_run(run_id).data.metrics)


def test_opted_in_run_gets_cpu_and_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    client, run_id, uri = _run(tmp_path)
    monitor = start_system_metrics(run_id, uri)
    assert monitor is not None
    time.sleep(1.0)
    stop_system_metrics(monitor)
    metrics = client.get_run(run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics and "system/system_memory_usage_megabytes" in metrics
    assert 0.0 <= metrics["system/cpu_utilization_percentage"] <= 100.0
    assert metrics["system/system_memory_usage_megabytes"] > 0
