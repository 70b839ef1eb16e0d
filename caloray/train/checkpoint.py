"""Resumable training state next to the model file of `caloray.models.save_model`.

A checkpoint folder holds `model.pt` (the weights_only model checkpoint of `caloray.models`) and
`train_state.pt` (finished epochs, optimizer, schedule, RNG states, per-epoch history), both read back
with `torch.load(weights_only=True)`, and `history.json` for people.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from caloray.models import CheckpointError, Surrogate, read_checkpoint, save_model
from caloray.train.seeds import rng_state, set_rng_state

MODEL_FILE = "model.pt"
STATE_FILE = "train_state.pt"
HISTORY_FILE = "history.json"


def save_training_state(
    directory: str | Path,
    model: Surrogate,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    epoch: int,
    history: list[dict[str, float]],
) -> Path:
    """Write everything needed to continue after `epoch` (number of finished epochs)."""
    directory = Path(directory)
    save_model(model, directory / MODEL_FILE)
    state = {
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "history": history,
    }
    torch.save(state, directory / STATE_FILE)
    (directory / HISTORY_FILE).write_text(json.dumps(history, indent=1))
    return directory


def load_training_state(
    directory: str | Path,
    model: Surrogate,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[int, list[dict[str, float]]]:
    """Restore model, optimizer, schedule and RNGs in place; returns (finished epochs, history)."""
    directory = Path(directory)
    payload = read_checkpoint(directory / MODEL_FILE)
    if payload["kind"] != model.kind:
        raise CheckpointError(
            f"{directory / MODEL_FILE}: checkpoint holds kind {payload['kind']!r}, the config trains"
            f" {model.kind!r}"
        )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{directory}: weights do not match the configured {model.kind!r} ({exc})"
        ) from None
    state = read_history_state(directory)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return int(state["epoch"]), list(state["history"])


def read_history_state(directory: str | Path) -> dict:
    """The raw `train_state.pt` dict of a checkpoint folder (weights_only load)."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: training state missing, cannot resume from {directory}")
    return torch.load(path, map_location="cpu", weights_only=True)
