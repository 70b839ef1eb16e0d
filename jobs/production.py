"""Ray Job entrypoint of the scheduled production run: simulate the datasets, then train on them.

    python jobs/production.py --config jobs/configs/production-ecal-hcal.yaml --out /mnt/caloray/production

Each run writes into its own folder OUT/RUN (RUN = UTC start time, e.g. 20261123T020000Z): simulated
shards in RUN/sim/NAME/, the trained ensemble in RUN/train/, provenance in each. Config paths are relative
to the production config file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import simulate
import train
from _entry import finish, job_parser, run_script

from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.runtime import init_ray
from caloray.train import load_train_config


@dataclass
class ProductionConfig:
    """Which simulate job and train config one production run chains, and which datasets train uses."""

    simulate: str
    train: str
    train_datasets: list[str] = field(default_factory=list)
    gpu: bool = False  # train with one GPU per Ray Train worker (the GPU worker group)

    def __post_init__(self) -> None:
        if not self.train_datasets:
            raise ConfigError("train_datasets: name at least one dataset of the simulate job to train on")


def run_folder(out: Path, now: datetime | None = None) -> Path:
    """OUT/<UTC start time>; never reuses an existing folder."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    folder = out / stamp
    if folder.exists():
        raise ConfigError(f"{folder}: a production run with this start time exists already")
    return folder


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__.splitlines()[0], out_help="root of the run folders (outputs/production)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_path = Path(args.config)
    config = load_yaml(ProductionConfig, config_path)
    job = simulate.load_job(config_path.parent / config.simulate)
    train_config = load_train_config(config_path.parent / config.train)
    names = [dataset.name for dataset in getattr(job, "datasets", [])]
    missing = sorted(set(config.train_datasets) - set(names))
    if missing:
        raise ConfigError(f"{config_path}: train_datasets {missing} not among the simulated datasets {names}")
    run = run_folder(Path(args.out or "outputs/production"))
    init_ray()
    simulate.run(job, run / "sim")
    finish(run / "sim", job, stage="simulate", config_file=str(config_path.parent / config.simulate))
    train_config.output_dir = str(run / "train")
    train_config.data.paths = [str(run / "sim" / name) for name in config.train_datasets]
    train_config.ensemble.use_gpu = train_config.ensemble.use_gpu or config.gpu
    train.train(train_config)
    finish(run, config, stage="production", config_file=str(config_path))
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
