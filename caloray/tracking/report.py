"""Log a finished study or validation run (params, metrics, artifacts) to MLflow in one call."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from caloray.tracking.lineage import log_shower_inputs, source_tags
from caloray.tracking.params import energy_step, flatten_params
from caloray.tracking.store import resolve_tracking_uri


def log_report(
    out_dir: str | Path,
    experiment: str,
    run_name: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    artifacts: Iterable[str | Path] = (),
    tracking_uri: str | None = None,
    inputs: Mapping[str, Sequence[str | Path]] | None = None,
    geometry: str | None = None,
    layout: Any = None,
) -> tuple[str, str]:
    """Create a run in `experiment` (local store in `out_dir` unless a URI is configured); returns (uri, run id).

    `inputs`: shower files per dataset context ("reference", "evaluation", ...), logged as dataset inputs of
    `geometry` (`layout`: the `caloray.io.RootLayout` of ROOT inputs). Uses an explicit client, so several
    reports in one process never share an active run.
    """
    uri, artifact_location = resolve_tracking_uri(out_dir, tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(
        experiment, artifact_location=artifact_location)
    run_id = client.create_run(experiment_id, run_name=run_name, tags=source_tags()).info.run_id
    for context, paths in (inputs or {}).items():
        log_shower_inputs(client, run_id, paths, context=context, geometry=geometry, layout=layout)
    flat = flatten_params({k: json.loads(json.dumps(v, default=str)) for k, v in params.items()})
    client.log_batch(run_id, params=[Param(k, v) for k, v in flat.items()])
    finite = []  # per-energy results (PREFIX.<E>GeV.NAME) are logged as PREFIX.NAME with step = E in MeV
    for key, value in metrics.items():
        if value == value and abs(float(value)) != float("inf"):
            name, step = energy_step(key)
            finite.append(Metric(name, float(value), 0, step))
    for start in range(0, len(finite), 500):
        client.log_batch(run_id, metrics=finite[start:start + 500])
    for path in artifacts:
        path = Path(path)
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path=path.name)
        elif path.is_file():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    return uri, run_id
