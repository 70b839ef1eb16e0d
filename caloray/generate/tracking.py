"""The end of a generation's MLflow run: the validation decides its status (FINISHED when it passes or is off,
FAILED when it fails; a crash ends it FAILED through `caloray.tracking.Run.fail`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from caloray.tracking.run import Run


def finish_generation(run: Run, metrics: Mapping[str, float], artifacts: Iterable[Path], *,
                      passed: bool | None) -> str:
    """Log metrics, artifacts and the `caloray.validation` tag, then end the run; returns its status."""
    run.log_metrics(metrics)
    run.log_artifacts(artifacts)
    run.set_tags({"caloray.validation": "off" if passed is None else "passed" if passed else "failed"})
    return run.finish("FAILED" if passed is False else "FINISHED")
