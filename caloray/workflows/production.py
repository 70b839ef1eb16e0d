"""Workflow `production` (the scheduled run): simulate the datasets of a simulate config, then train on some of
them, into OUT/<UTC start time>/."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from caloray.errors import ConfigError
from caloray.workflows import Result, build_config, write_job_record


@dataclass
class Config:
    """simulate, train: a `simulate` and a `train` workflow config file (relative paths: to this config's
    file); train_datasets: the simulated datasets train reads; gpu: train with one GPU per Ray Train worker."""

    simulate: str
    train: str
    train_datasets: list[str] = field(default_factory=list)
    gpu: bool = False
    out: str = "outputs/production"

    def __post_init__(self) -> None:
        if not self.train_datasets:
            raise ConfigError("train_datasets: name at least one dataset of the simulate job to train on")


def resolve_paths(config: Config, base: Path) -> Config:
    """`simulate` and `train` relative to the folder `base` of the config file that names them."""
    return dataclasses.replace(config, simulate=str(base / config.simulate), train=str(base / config.train))


def run_folder(out: Path, now: datetime | None = None) -> Path:
    """OUT/<UTC start time>; never reuses an existing folder."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    folder = out / stamp
    if folder.exists():
        raise ConfigError(f"{folder}: a production run with this start time exists already")
    return folder


def run(config: Config) -> Result:
    """Check both configs, then simulate into RUN/sim/NAME/ and train into RUN/train/ (each with its job record)."""
    from caloray.workflows import simulate, train

    sim = build_config("simulate", config.simulate)
    training = build_config("train", config.train)
    names = [d.name for d in sim.datasets]
    missing = sorted(set(config.train_datasets) - set(names))
    if missing:
        raise ConfigError(f"{config.simulate}: train_datasets {missing} not among the simulated datasets {names}")
    folder = run_folder(Path(config.out))
    simulated = simulate.run(dataclasses.replace(sim, out=str(folder / "sim")), progress=False)
    write_job_record("simulate", sim, simulated)
    training = dataclasses.replace(
        training, output_dir=str(folder / "train"),
        data=dataclasses.replace(training.data, paths=[str(folder / "sim" / n) for n in config.train_datasets]),
        ensemble=dataclasses.replace(training.ensemble, use_gpu=training.ensemble.use_gpu or config.gpu))
    trained = train.run(training)
    write_job_record("train", training, trained)
    return Result(out=folder, paths={**simulated.paths, **trained.paths},
                  summary=f"{simulated.summary}\n{trained.summary}\nproduction run in {folder}")
