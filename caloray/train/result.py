"""What an ensemble training returns: per-member histories and final model files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from caloray.models import Ensemble, Surrogate, load_model
from caloray.train.checkpoint import MODEL_FILE
from caloray.train.config import TrainConfig


@dataclass
class MemberResult:
    """One trained member: seed, per-epoch history, last checkpoint folder, wall-clock span of its run.

    `started_at`/`finished_at` are `time.time()` around the member's `trainer.fit()` (equal when the
    member had already finished in an earlier, resumed run).
    """

    index: int
    seed: int
    history: list[dict[str, float]]
    checkpoint_dir: Path
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def model_path(self) -> Path:
        """The member's final model file (`caloray.models.load_model` reads it)."""
        return self.checkpoint_dir / MODEL_FILE

    @property
    def final_val_loss(self) -> float:
        return self.history[-1]["val_loss"] if self.history else float("nan")


@dataclass
class TrainResult:
    """The trained ensemble: members in index order, where they are stored and how they were tracked."""

    config: TrainConfig
    members: list[MemberResult]
    output_dir: Path
    n_voxels: int
    n_train: int
    n_validation: int
    mlflow_run_id: str | None = None
    tracking_uri: str | None = None
    registered: tuple[str, int] | None = None

    def load_members(self) -> list[Surrogate]:
        """The members' final models (weights_only load, kind checked against the config)."""
        return [load_model(m.model_path, expected_kind=self.config.model.kind) for m in self.members]

    def ensemble(self) -> Ensemble:
        """The members combined into one `caloray.models.Ensemble`."""
        return Ensemble.from_members(self.load_members())
