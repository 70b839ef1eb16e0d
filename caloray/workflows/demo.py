"""Workflow `demo` (`make run`): the end-to-end pipeline on the embedded `caloray/configs/demo.yaml`, every
production stage at laptop scale on a local Ray with the local MLflow store OUT/mlflow.db."""

from __future__ import annotations

from pathlib import Path

from caloray.config import load_yaml
from caloray.pipelines.end_to_end import PipelineConfig as Config
from caloray.workflows import Result, pipeline

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"

__all__ = ["DEFAULT_CONFIG", "Config", "load_demo_config", "run"]


def load_demo_config(path: str | Path | None = None) -> Config:
    """The demo's PipelineConfig: `path`, or the embedded default."""
    return load_yaml(Config, path or DEFAULT_CONFIG)


def run(config: Config) -> Result:
    """`pipeline.run`, recorded as the demo."""
    return pipeline.run(config, stage="demo")
