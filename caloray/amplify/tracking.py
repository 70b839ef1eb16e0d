"""Optional MLflow logging of an amplification study: params, factors as metrics, tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from caloray.config import to_dict
from caloray.tracking.params import flatten_params

if TYPE_CHECKING:
    from caloray.amplify.config import AmplificationConfig
    from caloray.amplify.study import AmplificationResult


def log_study(config: AmplificationConfig, result: AmplificationResult, out_dir: str | Path) -> str:
    """Log to `config.tracking_uri` / `config.experiment`; returns the MLflow run id."""
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(config.experiment)
    run = client.create_run(experiment_id, run_name=f"amplification-n{config.n_train}",
                            tags={"caloray.role": "amplification"})
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in flatten_params(to_dict(config)).items()]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start : start + 100])
    metrics = []
    for row in result.summary:
        stem = f"{row['model']}_q{row['n_quantiles']}"
        metrics += [Metric(f"amplification_{stem}", float(row["amplification"]), 0, 0),
                    Metric(f"amplification_err_{stem}", float(row["amplification_err"]), 0, 0),
                    Metric(f"amplification_exact_{stem}", float(row["amplification_exact"]), 0, 0)]
    metrics.append(Metric("study_seconds", result.seconds, 0, 0))
    client.log_batch(run_id, metrics=metrics)
    for key in ("summary", "repetitions", "curves", "table", "json", "config", "provenance"):
        client.log_artifact(run_id, str(result.paths[key]))
    client.log_artifacts(run_id, str(Path(out_dir) / "plots"), artifact_path="plots")
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id
