"""Workflow `pipeline`: simulate → ingest → train → generate → validate → calibrate → super-resolve, under one
parent MLflow run (`caloray.pipelines.end_to_end`); `demo` is this workflow on the embedded demo config."""

from __future__ import annotations

from pathlib import Path

from caloray.pipelines.end_to_end import PipelineConfig as Config
from caloray.pipelines.end_to_end import run_pipeline, summary_text
from caloray.provenance import write_provenance
from caloray.workflows import Result

__all__ = ["Config", "run"]


def run(config: Config, *, stage: str = "pipeline") -> Result:
    """Run every stage into `config.out`. A folder that holds an earlier run is continued, not overwritten:
    finished samples, trainings, generated and calibrated shards are reused. `stage` names the run in
    OUT/provenance.json."""
    out = Path(config.out).resolve()
    resume = (out / "sim").exists()
    if resume:
        print(f"continuing the run in {out} (finished stages are reused; delete the folder for a fresh run)")
    summary = run_pipeline(config, out, resume=resume)
    write_provenance(out / "provenance.json", config, stage=stage, registered=summary["registered"],
                     pipeline_run_id=summary["pipeline_run_id"], stages=summary["stages"])
    return Result(out=out, metrics=summary.get("metrics", {}), paths={"summary": [out / "pipeline.json"]},
                  summary="== summary\n" + summary_text(summary, out), detail=summary)
