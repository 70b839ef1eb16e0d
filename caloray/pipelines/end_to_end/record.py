"""The parent MLflow run of one pipeline run: every stage's run is nested under it (`Run.nest`)."""

from __future__ import annotations

from pathlib import Path

from caloray.config import to_dict
from caloray.pipelines.end_to_end.config import PipelineConfig
from caloray.tracking.run import Run


def start_pipeline_run(config: PipelineConfig, out: Path) -> Run:
    """The `pipeline` run (params: the whole config) in the one store every stage uses: `config.tracking_uri`,
    else `MLFLOW_TRACKING_URI`, else a local SQLite store in `out` with its artifacts under `out/mlartifacts`."""
    tags = {"caloray.role": "pipeline", "caloray.ray_job_id": str(_ray_job_id())}
    return Run.start(config.experiment, "pipeline", out, tracking_uri=config.tracking_uri, params=to_dict(config),
                     tags=tags, system_metrics=True)


def _ray_job_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_job_id() if ray.is_initialized() else None
