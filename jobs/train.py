"""Ray Job entrypoint: train a surrogate ensemble on Ray Train, tracked in MLflow.

    python jobs/train.py --config jobs/configs/train-flow1-ecal-hcal.yaml --out /mnt/caloray/train

MLflow goes to `MLFLOW_TRACKING_URI` (the in-cluster server on KubeRay) unless the config names one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from _entry import finish, job_parser, run_script

from caloray.runtime import init_ray
from caloray.train import TrainConfig, load_train_config, train_ensemble
from caloray.train.result import TrainResult


def train(config: TrainConfig, *, resume: bool = False) -> TrainResult:
    """Connect to Ray, train the ensemble, write the job's provenance next to the models."""
    init_ray()
    result = train_ensemble(config, resume=resume)
    for member in result.members:
        print(f"member {member.index}: val_loss {member.final_val_loss:.4f} → {member.model_path}")
    finish(Path(config.output_dir), config, stage="train", mlflow_run_id=result.mlflow_run_id,
           models=[str(m.model_path) for m in result.members])
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], out_help="output folder (overrides `output_dir`)")
    parser.add_argument("--data", nargs="+", help="shower files/folders (override `data.paths`)")
    parser.add_argument("--gpu", action="store_true", help="one GPU per Ray Train worker (use_gpu)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoints")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_train_config(args.config)
    if args.out:
        config.output_dir = args.out
    if args.data:
        config.data.paths = list(args.data)
    if args.gpu:
        config.ensemble.use_gpu = True
    train(config, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
