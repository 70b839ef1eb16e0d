"""Workflow `train`: an ensemble of surrogates on Ray Train, tracked in MLflow (`caloray.train.train_ensemble`)."""

from __future__ import annotations

from caloray.train import TrainConfig as Config
from caloray.train import train_ensemble
from caloray.workflows import Result

__all__ = ["Config", "run"]


def run(config: Config, *, resume: bool = False) -> Result:
    """Train (or with `resume`, continue from the last checkpoints) every member; `paths["models"]`: the final
    model files; `detail`: the `TrainResult`."""
    from caloray.tracking import ui_command

    result = train_ensemble(config, resume=resume)
    lines = [f"member {m.index}: val_loss {m.final_val_loss:.4f} → {m.model_path}" for m in result.members]
    if result.tracking_uri:
        ui = ui_command(result.tracking_uri, result.output_dir)
        lines.append(f"MLflow run {result.mlflow_run_id}; browse with: {ui}")
    if result.registered:
        lines.append(f"registered model {result.registered[0]!r} version {result.registered[1]}")
    losses = [m.final_val_loss for m in result.members]
    return Result(out=result.output_dir, metrics={"final_val_loss_mean": sum(losses) / max(len(losses), 1)},
                  paths={"models": [m.model_path for m in result.members]}, summary="\n".join(lines), detail=result)
