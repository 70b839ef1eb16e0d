"""Optional MLflow logging of an amplification study: params, factors as metrics, tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from caloray.config import to_dict

if TYPE_CHECKING:
    from caloray.amplify.config import AmplificationConfig
    from caloray.amplify.study import AmplificationResult


def log_study(config: AmplificationConfig, result: AmplificationResult, out_dir: str | Path) -> str:
    """Log to `config.tracking_uri` / `config.experiment`; returns the MLflow run id."""
    from caloray.tracking.run import Run

    with Run.start(config.experiment, f"amplification-n{config.n_train}", out_dir, tracking_uri=config.tracking_uri,
                   params=to_dict(config), tags={"caloray.role": "amplification"}) as run:
        metrics = {"study_seconds": result.seconds}
        for row in result.summary:
            stem = f"{row['model']}_q{row['n_quantiles']}"
            for key in ("amplification", "amplification_err", "amplification_exact"):
                metrics[f"{key}_{stem}"] = row[key]
        run.log_metrics(metrics)
        run.log_artifacts([result.paths[key] for key in ("summary", "repetitions", "curves", "table", "json",
                                                         "config", "provenance")])
        run.log_artifacts([Path(out_dir) / "plots"])
    return run.run_id
