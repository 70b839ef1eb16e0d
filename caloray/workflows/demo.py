"""Workflow `demo` (`make run`): the end-to-end pipeline on the embedded `caloray/configs/demo.yaml` (the
registry's default config of `demo`), every production stage at laptop scale on a local Ray with the local
MLflow store OUT/mlflow.db."""

from __future__ import annotations

from caloray.workflows import Result, pipeline
from caloray.workflows.pipeline import Config

__all__ = ["Config", "run"]


def run(config: Config) -> Result:
    """`pipeline.run`, recorded as the demo."""
    return pipeline.run(config, stage="demo")
