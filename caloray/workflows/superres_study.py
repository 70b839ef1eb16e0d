"""Workflow `superres-study`: the super-resolution thesis' evaluation, strict vs oracle
(`caloray.studies.superres`)."""

from __future__ import annotations

from caloray.studies.superres import SuperResStudyConfig as Config
from caloray.studies.superres import run_superres_study
from caloray.workflows import Result

__all__ = ["Config", "run"]


def run(config: Config) -> Result:
    """Simulate, train, upsample and test into `config.out`; `detail`: the `SuperResStudyResult`."""
    result = run_superres_study(config)
    return Result(out=result.out, paths={f"upsampled.{k}": v for k, v in result.upsampled.items()},
                  metrics={f"seconds.{k}": v for k, v in result.seconds.items()}, detail=result,
                  summary=f"super-resolution study: {len(result.rows)} test rows in {result.out}")
