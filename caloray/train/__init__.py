"""Ensemble training on Ray Train: configs, the per-worker loop, checkpoints and resume."""

from caloray.train.config import (
    DataSpec,
    EnsembleConfig,
    ModelSpec,
    OptimizerConfig,
    ScheduleConfig,
    TrackingConfig,
    TrainConfig,
    load_train_config,
)
from caloray.train.ensemble import max_concurrent_members, run_training, train_ensemble
from caloray.train.errors import NonFiniteLossError, TrainingError
from caloray.train.result import MemberResult, TrainResult

__all__ = [
    "DataSpec",
    "EnsembleConfig",
    "MemberResult",
    "ModelSpec",
    "NonFiniteLossError",
    "OptimizerConfig",
    "ScheduleConfig",
    "TrackingConfig",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "load_train_config",
    "max_concurrent_members",
    "run_training",
    "train_ensemble",
]
