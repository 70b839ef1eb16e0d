"""Ray Job entrypoint: the end-to-end pipeline, simulate → ingest → train → generate → validate → calibrate → upsample.

    python jobs/pipeline.py --config jobs/configs/pipeline-demo.yaml --out /mnt/caloray/pipeline/demo

Stages, all on the connected Ray cluster and tracked in one MLflow experiment (`MLFLOW_TRACKING_URI`, else a
local store in OUT):

1. simulate the training, reference, calibration (fixed energies) and super-resolution (ds2) samples;
2. ingest the training sample with Ray Data: high-level features (Parquet) and the response table;
3. train and register three ensembles on Ray Train: Flow-I (layer energies; calibration and the generator's
   layer model), the shower generator (a voxel-flow chained to Flow-I, or a shower-vae) and a
   SuperResolutionFlow;
4. generate showers from the registered generator (`caloray.generate`: sharded, validated, tracked);
5. validate the generated showers against the held-out reference sample (two-sample tests);
6. calibrate the fixed-energy sample with the registered Flow-I (MLE energies and resolutions);
7. super-resolve the ds2 sample with the registered SuperResolutionFlow.

A parent MLflow run `pipeline` records the stage timings, headline metrics and the summary. Outputs:
OUT/sim/*, OUT/features, OUT/train/*, OUT/generated, OUT/validation, OUT/calibrated, OUT/superres,
OUT/pipeline.json and OUT/provenance.json. `--resume` continues an interrupted run in the same OUT
(trainings resume from their checkpoints; generation and calibration skip finished shards).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from _entry import finish, job_parser, run_script

from caloray.errors import ConfigError
from caloray.pipelines.end_to_end import PipelineConfig, load_config, run_pipeline, summary_text
from caloray.runtime import init_ray

__all__ = ["PipelineConfig", "load_config", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], out_help="output folder of this run (default outputs/pipeline)")
    parser.add_argument("--gpu", action="store_true", help="train with one GPU per Ray Train worker (use_gpu)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in the same --out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(args.config)
    out = Path(args.out or "outputs/pipeline").resolve()
    if (out / "pipeline.json").exists() and not args.resume:
        raise ConfigError(f"{out}: holds a finished pipeline run; choose another --out")
    init_ray()
    summary = run_pipeline(config, out, resume=args.resume, gpu=args.gpu)
    print("\n" + summary_text(summary, out), flush=True)
    finish(out, config, stage="pipeline", config_file=str(args.config), registered=summary["registered"],
           pipeline_run_id=summary["pipeline_run_id"], stages=summary["stages"])
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
