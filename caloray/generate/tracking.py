"""The MLflow run of a generation: params at the start, metrics and artifacts at the end, and a status that
the validation decides (FINISHED when it passes or is off, FAILED when it fails or the run crashes)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from caloray.tracking.params import flatten_params
from caloray.tracking.store import resolve_tracking_uri, start_system_metrics, stop_system_metrics

_BATCH = 100


class GenerationTracker:
    """One MLflow run per `generate` call, through an explicit client (no global active run)."""

    def __init__(self, client: MlflowClient, run_id: str, tracking_uri: str) -> None:
        self.client, self.run_id, self.tracking_uri = client, run_id, tracking_uri
        self.system_metrics = start_system_metrics(run_id, tracking_uri)  # opt-in (MLflow's own env switch)

    @classmethod
    def start(cls, out_dir: Path, experiment: str, run_name: str, *, params: Mapping[str, Any],
              tags: Mapping[str, str], tracking_uri: str | None = None) -> GenerationTracker:
        """Open a RUNNING run in `experiment` (local store in `out_dir` unless a URI is configured)."""
        uri, artifact_location = resolve_tracking_uri(out_dir, tracking_uri)
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=artifact_location)
        run_id = client.create_run(experiment_id, run_name=run_name, tags=dict(tags)).info.run_id
        flat = flatten_params({k: json.loads(json.dumps(v, default=str)) for k, v in params.items()})
        items = [Param(k, v) for k, v in flat.items()]
        for start in range(0, len(items), _BATCH):
            client.log_batch(run_id, params=items[start:start + _BATCH])
        return cls(client, run_id, uri)

    def finish(self, metrics: Mapping[str, float], artifacts: Iterable[Path], *, passed: bool | None) -> str:
        """Log metrics and artifacts, then end the run FINISHED (passed or no validation) or FAILED."""
        finite = [Metric(k, float(v), 0, 0) for k, v in metrics.items() if v == v and abs(float(v)) != float("inf")]
        for start in range(0, len(finite), 10 * _BATCH):
            self.client.log_batch(self.run_id, metrics=finite[start:start + 10 * _BATCH])
        for path in artifacts:
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
            elif path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_tag(self.run_id, "caloray.validation",
                            "off" if passed is None else "passed" if passed else "failed")
        status = RunStatus.FAILED if passed is False else RunStatus.FINISHED
        stop_system_metrics(self.system_metrics)
        self.client.set_terminated(self.run_id, RunStatus.to_string(status))
        return RunStatus.to_string(status)

    def fail(self, error: BaseException) -> None:
        """End the run FAILED with the error as a tag (generation crashed or was interrupted)."""
        self.client.set_tag(self.run_id, "caloray.error", f"{type(error).__name__}: {error}"[:4000])
        stop_system_metrics(self.system_metrics)
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FAILED))
