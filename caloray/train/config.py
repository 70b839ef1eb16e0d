"""Typed training configuration: model, data, optimizer, schedule, ensemble resources, tracking."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caloray.config import load_yaml
from caloray.errors import ConfigError

SCHEDULE_KINDS = ("constant", "multistep", "onecycle")
OPTIMIZER_KINDS = ("adam", "adamw", "sgd")


@dataclass
class ModelSpec:
    """Which surrogate to train: its registry `kind` and constructor keyword arguments."""

    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSpec:
    """Where the showers come from and how they are split.

    `geometry` names a built-in geometry (`caloray.geometry.get_geometry`); the showers' voxel count is
    checked against it. `validation_fraction` of the rows (shuffled once with `split_seed`) are held out.
    `preprocessing_rows`: training rows a model's data-dependent preprocessing is fitted on before the first
    step (`Surrogate.fit_preprocessing`, e.g. the VAE's standardization).
    """

    paths: list[str] = field(default_factory=list)
    geometry: str | None = None
    validation_fraction: float = 0.2
    split_seed: int = 0
    shuffle_buffer: int = 2000
    preprocessing_rows: int = 10000

    def __post_init__(self) -> None:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"data.validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.shuffle_buffer < 0:
            raise ConfigError(f"data.shuffle_buffer must be ≥ 0, got {self.shuffle_buffer}")
        if self.preprocessing_rows < 1:
            raise ConfigError(f"data.preprocessing_rows must be ≥ 1, got {self.preprocessing_rows}")


@dataclass
class OptimizerConfig:
    """Optimizer name and hyper-parameters (Flow-I reference: Adam, lr 1e-4)."""

    name: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZER_KINDS:
            raise ConfigError(f"optimizer.name {self.name!r} unknown; one of {', '.join(OPTIMIZER_KINDS)}")
        if self.lr <= 0:
            raise ConfigError(f"optimizer.lr must be > 0, got {self.lr}")


@dataclass
class ScheduleConfig:
    """Learning-rate schedule.

    - "constant": the optimizer's lr throughout;
    - "multistep": lr × gamma at each epoch in `milestones` (Flow-I: halving, gamma 0.5);
    - "onecycle": torch OneCycleLR stepped per batch up to `max_lr` (SuperCalo).
    """

    kind: str = "constant"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    max_lr: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ConfigError(f"schedule.kind {self.kind!r} unknown; one of {', '.join(SCHEDULE_KINDS)}")
        if self.kind == "onecycle" and (self.max_lr is None or self.max_lr <= 0):
            raise ConfigError("schedule.max_lr must be set (> 0) for the onecycle schedule")
        if self.kind == "multistep" and sorted(self.milestones) != list(self.milestones):
            raise ConfigError(f"schedule.milestones must increase, got {self.milestones}")


@dataclass
class EnsembleConfig:
    """Ensemble size and the Ray resources of each member.

    Each member is one Ray Train run with `num_workers` workers (DDP when > 1) of `cpus_per_worker`
    CPUs (and one GPU each when `use_gpu`). `max_failures` worker-group restarts are retried
    automatically from the member's last checkpoint.
    """

    members: int = 1
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    max_failures: int = 0

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ConfigError(f"ensemble.members must be ≥ 1, got {self.members}")
        if self.num_workers < 1:
            raise ConfigError(f"ensemble.num_workers must be ≥ 1, got {self.num_workers}")
        if self.cpus_per_worker <= 0:
            raise ConfigError(f"ensemble.cpus_per_worker must be > 0, got {self.cpus_per_worker}")


@dataclass
class TrackingConfig:
    """MLflow settings. `tracking_uri` None → `MLFLOW_TRACKING_URI` or `sqlite:///<output_dir>/mlflow.db`.

    `registry_name` None skips model registration.
    """

    enabled: bool = True
    experiment: str = "caloray"
    registry_name: str | None = None
    tracking_uri: str | None = None


@dataclass
class TrainConfig:
    """Everything one ensemble training needs; see `caloray/configs/train-*.yaml` for examples."""

    model: ModelSpec
    data: DataSpec = field(default_factory=DataSpec)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    epochs: int = 10
    batch_size: int = 200
    checkpoint_every: int = 1
    seed: int = 0
    output_dir: str = "outputs/train"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be ≥ 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be ≥ 1, got {self.checkpoint_every}")


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a `TrainConfig` from YAML; unknown keys name the closest valid key."""
    return load_yaml(TrainConfig, path)
