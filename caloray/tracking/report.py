"""Log a finished study or validation run (params, metrics, artifacts) to MLflow in one call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from caloray.tracking.lineage import log_shower_inputs
from caloray.tracking.run import Run


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
    `geometry` (`layout`: the `caloray.io.RootLayout` of ROOT inputs). Per-energy results (PREFIX.<E>GeV.NAME)
    are logged as PREFIX.NAME with step = E in MeV. Inside the end-to-end pipeline the run is a child of the
    pipeline's run (`Run.nest`).
    """
    with Run.start(experiment, run_name, out_dir, tracking_uri=tracking_uri, params=params) as run:
        for context, paths in (inputs or {}).items():
            log_shower_inputs(run.client, run.run_id, paths, context=context, geometry=geometry, layout=layout)
        run.log_metrics(metrics, per_energy=True)
        run.log_artifacts(artifacts)
    return run.tracking_uri, run.run_id
