"""Tracking of one pipeline run: the shared tracking URI and the parent MLflow run of all stages."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from caloray.config import to_dict
from caloray.pipelines.end_to_end.config import PipelineConfig
from caloray.tracking.store import start_system_metrics, stop_system_metrics


def resolve_tracking(config: PipelineConfig, out: Path) -> str:
    """The one tracking URI of every stage; a local SQLite store in `out` gets its experiment created here
    with its artifacts under `out/mlartifacts` (MLflow would otherwise put them under the working dir)."""
    from mlflow.tracking import MlflowClient

    from caloray.tracking.store import local_artifact_location, local_tracking_uri

    uri = config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    uri = local_tracking_uri(out)
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(config.experiment) is None:
        client.create_experiment(config.experiment, artifact_location=local_artifact_location(out))
    return uri


class PipelineRun:
    """The parent MLflow run: params at start, one `seconds.STAGE` metric per stage, headline metrics,
    the summary as artifacts at the end (FAILED with the error as a tag when a stage raises)."""

    def __init__(self, uri: str, experiment: str, config: PipelineConfig) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from caloray.tracking.params import flatten_params

        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        tags = {"caloray.role": "pipeline", "caloray.ray_job_id": str(_ray_job_id())}
        self.run_id = self.client.create_run(experiment_id, run_name="pipeline", tags=tags).info.run_id
        params = flatten_params(json.loads(json.dumps(to_dict(config), default=str)))
        items = [Param(k, v[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start:start + 100])
        self.metrics: dict[str, float] = {}
        self.system_metrics = start_system_metrics(self.run_id, uri)  # opt-in (MLflow's own env switch)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Log finite metrics; per-energy ones named `STAGE.<E>GeV.NAME` go to MLflow as `STAGE.NAME` with
        step = E in MeV, so the UI draws them against energy (the summary keeps the per-energy names)."""
        from mlflow.entities import Metric

        from caloray.tracking.params import energy_step

        now = int(time.time() * 1000)
        finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        self.metrics |= finite
        items = [Metric(key, v, now, step) for (key, step), v in ((energy_step(k), v) for k, v in finite.items())]
        for start in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[start:start + 500])

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def finish(self, artifacts: Sequence[tuple[Path, str | None]]) -> None:
        """Log (file, artifact folder or None for the top) pairs, then close the run."""
        for path, folder in artifacts:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), artifact_path=folder)
        stop_system_metrics(self.system_metrics)
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException) -> None:
        self.client.set_tag(self.run_id, "caloray.error", f"{type(error).__name__}: {error}"[:4000])
        stop_system_metrics(self.system_metrics)
        self.client.set_terminated(self.run_id, "FAILED")


def _ray_job_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_job_id() if ray.is_initialized() else None
