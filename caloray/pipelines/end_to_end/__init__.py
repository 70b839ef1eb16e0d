"""The end-to-end pipeline: simulate → ingest → train → generate → validate → calibrate → super-resolve.

`caloray demo` runs it on the embedded demo config; `jobs/pipeline.py` runs it as a Ray Job.
"""

from caloray.pipelines.end_to_end.config import (
    CalibrateStage,
    GenerateStage,
    PipelineConfig,
    PipelineData,
    PipelineModels,
    SuperresStage,
    ValidateStage,
    load_config,
)
from caloray.pipelines.end_to_end.driver import run_pipeline, summary_text

__all__ = [
    "CalibrateStage",
    "GenerateStage",
    "PipelineConfig",
    "PipelineData",
    "PipelineModels",
    "SuperresStage",
    "ValidateStage",
    "load_config",
    "run_pipeline",
    "summary_text",
]
