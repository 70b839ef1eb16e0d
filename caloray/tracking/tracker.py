"""MLflow tracking of an ensemble: one parent run, one nested run per member, registry at the end."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from caloray.config import to_dict
from caloray.models import Ensemble, load_model, save_model
from caloray.models.transforms import InvertibleTransform
from caloray.tracking.params import flatten_params
from caloray.tracking.plots import plot_loss_curves
from caloray.tracking.registry import ENSEMBLE_ARTIFACT, ENSEMBLE_FILE, MANIFEST_FILE, register_ensemble
from caloray.tracking.store import resolve_tracking_uri

if TYPE_CHECKING:
    from caloray.train.config import TrainConfig
    from caloray.train.result import MemberResult, TrainResult

METRIC_KEYS = ("train_loss", "val_loss", "lr", "epoch_seconds", "train_events_per_s")
_BATCH = 100


class EnsembleTracker:
    """Logs a training to MLflow through an explicit `MlflowClient` (no global active-run state)."""

    def __init__(self, client: MlflowClient, run_id: str, config: TrainConfig, tracking_uri: str):
        self.client = client
        self.run_id = run_id
        self.config = config
        self.tracking_uri = tracking_uri
        self.member_runs: dict[int, str] = {}

    @classmethod
    def start(cls, config: TrainConfig, output_dir: Path, *, data_summary: dict[str, int | float]) -> EnsembleTracker:
        """Create (or reuse) the experiment and open the ensemble's parent run with its params."""
        uri, artifact_location = resolve_tracking_uri(output_dir, config.tracking.tracking_uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        if experiment is None:
            experiment_id = client.create_experiment(
                config.tracking.experiment, artifact_location=artifact_location
            )
        else:
            experiment_id = experiment.experiment_id
        name = f"{config.model.kind}-x{config.ensemble.members}"
        tags = {
            "caloray.role": "ensemble",
            "caloray.model_kind": config.model.kind,
            "caloray.geometry": str(config.data.geometry),
            "caloray.output_dir": str(output_dir),
        }
        run = client.create_run(experiment_id, run_name=name, tags=tags)
        tracker = cls(client, run.info.run_id, config, uri)
        params = flatten_params(to_dict(config)) | {f"data.{k}": str(v) for k, v in data_summary.items()}
        tracker._log_params(tracker.run_id, params)
        return tracker

    def log_member(self, member: MemberResult) -> str:
        """A nested run for `member`: params, per-epoch metrics, checkpoint, configs, loss curve."""
        run = self.client.create_run(
            self.client.get_run(self.run_id).info.experiment_id,
            run_name=f"member-{member.index:02d}",
            tags={
                MLFLOW_PARENT_RUN_ID: self.run_id,
                "caloray.role": "member",
                "caloray.member": str(member.index),
            },
        )
        run_id = run.info.run_id
        params = flatten_params(to_dict(self.config)) | {
            "member.index": str(member.index),
            "member.seed": str(member.seed),
        }
        self._log_params(run_id, params)
        self._log_history(run_id, member.history)
        self.client.log_artifacts(run_id, str(member.checkpoint_dir), artifact_path="checkpoint")
        with tempfile.TemporaryDirectory() as tmp:
            self._write_descriptions(Path(tmp), load_model(member.model_path))
            plot_loss_curves({f"member {member.index}": member.history}, Path(tmp) / "loss_curve.png")
            self.client.log_artifacts(run_id, tmp)
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        self.member_runs[member.index] = run_id
        return run_id

    def finish(self, result: TrainResult) -> None:
        """Log ensemble metrics and artifacts, register it if configured, close the parent run."""
        histories = {f"member {m.index}": m.history for m in result.members}
        final = [m.final_val_loss for m in result.members]
        mean = sum(final) / len(final)
        metrics = [
            Metric("ensemble_final_val_loss_mean", mean, _now(), 0),
            Metric("ensemble_final_val_loss_spread", max(final) - min(final), _now(), 0),
        ]
        self.client.log_batch(self.run_id, metrics=metrics)
        ensemble = Ensemble.from_members(result.load_members())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / ENSEMBLE_ARTIFACT
            save_model(ensemble, folder / ENSEMBLE_FILE)
            manifest = {
                "format": "caloray-ensemble",
                "member_kind": result.config.model.kind,
                "members": [
                    {
                        "index": m.index,
                        "seed": m.seed,
                        "final_val_loss": m.final_val_loss,
                        "mlflow_run_id": self.member_runs.get(m.index),
                    }
                    for m in result.members
                ],
                "geometry": result.config.data.geometry,
                "n_voxels": result.n_voxels,
            }
            (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
            (folder / "train-config.yaml").write_text(yaml.safe_dump(to_dict(result.config), sort_keys=False))
            self._write_descriptions(folder, ensemble.members[0])
            self.client.log_artifacts(self.run_id, str(folder), artifact_path=ENSEMBLE_ARTIFACT)
            plot_loss_curves(histories, Path(tmp) / "loss_curves.png")
            self.client.log_artifact(self.run_id, str(Path(tmp) / "loss_curves.png"))
        result.mlflow_run_id, result.tracking_uri = self.run_id, self.tracking_uri
        name = self.config.tracking.registry_name
        if name:
            source = f"{self.client.get_run(self.run_id).info.artifact_uri}/{ENSEMBLE_ARTIFACT}"
            version = register_ensemble(
                self.client,
                name,
                source=source,
                run_id=self.run_id,
                description=f"{len(result.members)} × {result.config.model.kind}",
            )
            result.registered = (name, version)
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def fail(self, error: BaseException) -> None:
        """Mark the parent run failed, with the error as a tag."""
        self.client.set_tag(self.run_id, "caloray.error", str(error)[:4000])
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FAILED))

    # ----- helpers -----------------------------------------------------------------------------
    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(run_id, params=items[start : start + _BATCH])

    def _log_history(self, run_id: str, history: list[dict[str, float]]) -> None:
        now = _now()
        metrics = [
            Metric(key, float(row[key]), now, int(row["epoch"]))
            for row in history
            for key in METRIC_KEYS
            if key in row
        ]
        for start in range(0, len(metrics), 10 * _BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + 10 * _BATCH])

    def _write_descriptions(self, folder: Path, model: Any) -> None:
        """model_config.json (kind, constructor config, preprocessing transforms) and geometry.json."""
        folder.mkdir(parents=True, exist_ok=True)
        preprocessing = {
            name: module.config()
            for name, module in model.named_modules()
            if isinstance(module, InvertibleTransform)
        }
        description = {"kind": model.kind, "config": model.config(), "preprocessing": preprocessing}
        (folder / "model_config.json").write_text(json.dumps(description, indent=1))
        geometry = {"name": self.config.data.geometry}
        (folder / "geometry.json").write_text(json.dumps(geometry, indent=1))


def _now() -> int:
    return int(time.time() * 1000)
