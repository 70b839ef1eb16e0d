"""Workflow `calibration-study`: the MLE-calibration paper's study (`caloray.studies.calibration`)."""

from __future__ import annotations

from pathlib import Path

from caloray.studies.calibration import CalibrationStudyConfig as Config
from caloray.studies.calibration import run_calibration_study
from caloray.workflows import Result

__all__ = ["Config", "run"]


def run(config: Config) -> Result:
    """Train, calibrate and tabulate into `config.out`; `detail`: the metrics rows (also OUT/metrics.csv)."""
    rows = run_calibration_study(config)
    out = Path(config.out).resolve()
    return Result(out=out, paths={"metrics": [out / "metrics.csv"]}, detail=rows,
                  summary=f"calibration study: {len(rows)} rows in {out / 'metrics.csv'}")
