"""The end-to-end pipeline: simulate → ingest → train → generate → validate → calibrate → super-resolve.

`caloray.workflows.pipeline` (and `demo`, on the embedded config) runs it from the CLI and `jobs/run.py`.
"""

from caloray.pipelines.end_to_end.config import PipelineConfig, PipelineData, PipelineModels
from caloray.pipelines.end_to_end.driver import run_pipeline, summary_text

__all__ = ["PipelineConfig", "PipelineData", "PipelineModels", "run_pipeline", "summary_text"]
