"""`caloray demo`: the end-to-end pipeline on built-in simulated data (what `make run` does).

The embedded default `caloray/configs/demo.yaml` runs every production stage at laptop scale on a local Ray
with the local MLflow store OUT/mlflow.db: simulate → ingest (Ray Data features, plots) → train Flow-I,
a shower generator and a SuperResolutionFlow (Ray Train, registered) → generate (validation-gated) → two-sample
tests against held-out showers → MLE calibration bias table → super-resolution. It ends with the summary and
the command that opens the MLflow UI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from caloray.pipelines.end_to_end import PipelineConfig, load_config, run_pipeline, summary_text
from caloray.provenance import write_provenance

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"
DEFAULT_OUT = "outputs/demo"


def load_demo_config(path: str | Path | None = None) -> PipelineConfig:
    """The demo's PipelineConfig: `path`, or the embedded default."""
    return load_config(path or DEFAULT_CONFIG)


def run_demo(config: PipelineConfig, out: str | Path = DEFAULT_OUT, *, gpu: bool = False) -> dict[str, Any]:
    """Run the pipeline into `out` (Ray must be connected) and print its summary; returns the summary.

    A folder that holds an earlier demo is continued, not overwritten: finished samples, trainings,
    generated and calibrated shards are reused, so a second `make run` is quick.
    """
    out = Path(out).resolve()
    resume = (out / "sim").exists()
    if resume:
        print(f"continuing the demo in {out} (finished stages are reused; delete the folder for a fresh run)")
    summary = run_pipeline(config, out, resume=resume, gpu=gpu)
    write_provenance(out / "provenance.json", config, stage="demo", registered=summary["registered"],
                     pipeline_run_id=summary["pipeline_run_id"], stages=summary["stages"])
    print("\n== summary\n" + summary_text(summary, out), flush=True)
    return summary
