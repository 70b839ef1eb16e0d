"""MLflow tracking of an ensemble: one parent run, one nested run per member, registry at the end."""

from __future__ import annotations

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
from caloray.tracking.lineage import log_shower_inputs, source_tags
from caloray.tracking.params import flatten_params, readable_json
from caloray.tracking.plots import plot_loss_curves
from caloray.tracking.registry import (
    CANDIDATE_ALIAS,
    ENSEMBLE_ARTIFACT,
    ENSEMBLE_FILE,
    MANIFEST_FILE,
    register_ensemble,
)
from caloray.tracking.store import resolve_tracking_uri, start_system_metrics, stop_system_metrics

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
        self.data_summary: dict[str, int | float] = {}
        #: A few held-out rows ("showers" (n, V) MeV, "incident_energies" (n,) MeV): the input example.
        self.example: dict[str, Any] = {}
        self.system_metrics = start_system_metrics(run_id, tracking_uri)  # opt-in (MLflow's own env switch)

    @classmethod
    def start(cls, config: TrainConfig, output_dir: Path, *, data_summary: dict[str, int | float],
              example: dict[str, Any] | None = None) -> EnsembleTracker:
        """Create (or reuse) the experiment and open the ensemble's parent run with its params, source tags and
        training data (`log_inputs`). `example`: a few held-out rows, the registered model's input example."""
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
        } | source_tags()
        run = client.create_run(experiment_id, run_name=name, tags=tags)
        tracker = cls(client, run.info.run_id, config, uri)
        tracker.data_summary, tracker.example = dict(data_summary), dict(example or {})
        params = flatten_params(to_dict(config)) | {f"data.{k}": str(v) for k, v in data_summary.items()}
        tracker._log_params(tracker.run_id, params)
        log_shower_inputs(client, tracker.run_id, config.data.paths, context="training",
                          geometry=config.data.geometry)
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
            } | source_tags(),
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
            (folder / MANIFEST_FILE).write_text(readable_json(manifest))
            (folder / "train-config.yaml").write_text(yaml.safe_dump(to_dict(result.config), sort_keys=False))
            self._write_descriptions(folder, ensemble.members[0])
            self.client.log_artifacts(self.run_id, str(folder), artifact_path=ENSEMBLE_ARTIFACT)
            plot_loss_curves(histories, Path(tmp) / "loss_curves.png")
            self.client.log_artifact(self.run_id, str(Path(tmp) / "loss_curves.png"))
            logged = self._log_model(folder, ensemble, result.n_voxels)
        result.mlflow_run_id, result.tracking_uri = self.run_id, self.tracking_uri
        name = self.config.tracking.registry_name
        if name:
            version = register_ensemble(
                self.client,
                name,
                source=logged.model_uri,
                model_id=logged.model_id,
                run_id=self.run_id,
                description=self._description(result, mean),
                tags=self._version_tags(result, ensemble),
                aliases=(CANDIDATE_ALIAS,),
            )
            result.registered = (name, version)
            self.client.set_tag(self.run_id, "caloray.registered", f"{name}:{version}")
        stop_system_metrics(self.system_metrics)
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def fail(self, error: BaseException) -> None:
        """Mark the parent run failed, with the error as a tag."""
        self.client.set_tag(self.run_id, "caloray.error", str(error)[:4000])
        stop_system_metrics(self.system_metrics)
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FAILED))

    # ----- helpers -----------------------------------------------------------------------------
    def _log_model(self, folder: Path, ensemble: Ensemble, n_voxels: int) -> Any:
        """The ensemble as an MLflow pyfunc model of the parent run (`caloray.tracking.pyfunc`)."""
        import numpy as np

        from caloray.tracking.pyfunc import log_pyfunc_model

        energies = np.asarray(self.example.get("incident_energies", []), dtype=np.float64).reshape(-1)
        showers = np.asarray(self.example.get("showers", np.zeros((0, n_voxels))), dtype=np.float64)
        if len(energies) == 0:  # no held-out rows: the training range's ends and middle
            low = float(self.data_summary.get("incident_energy_min_mev", 1e3))
            high = float(self.data_summary.get("incident_energy_max_mev", 1e5))
            energies = np.geomspace(low, high, 3)
        e_range = (self.data_summary.get("incident_energy_min_mev"), self.data_summary.get("incident_energy_max_mev"))
        return log_pyfunc_model(
            self.tracking_uri, self.run_id, folder, ensemble, name="model",
            example_showers=showers.reshape(-1, n_voxels), example_energies=energies,
            energy_range_mev=None if None in e_range else (float(e_range[0]), float(e_range[1])),
            pip_requirements=_requirements(),
        )

    def _description(self, result: TrainResult, val_loss: float) -> str:
        """What the version is: kind, members, geometry, training data and the validation status."""
        data = result.config.data
        source = ", ".join(data.paths) if data.paths else "an in-memory dataset"
        return (f"{len(result.members)} × {result.config.model.kind} on geometry {data.geometry} ({result.n_voxels} "
                f"voxels), trained on {result.n_train} showers from {source} ({result.n_validation} held out, final "
                f"validation loss {val_loss:.4g}). Validation: not yet run (alias @{CANDIDATE_ALIAS}; a passing "
                "generation validation sets @validated).")

    def _version_tags(self, result: TrainResult, ensemble: Ensemble) -> dict[str, str]:
        from caloray.tracking.pyfunc import pyfunc_task

        return {
            "caloray.model_kind": result.config.model.kind,
            "caloray.members": str(len(result.members)),
            "caloray.geometry": str(result.config.data.geometry),
            "caloray.n_voxels": str(result.n_voxels),
            "caloray.validation": "not run",
            "caloray.pyfunc_task": str(pyfunc_task(ensemble)),
        } | source_tags()

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
        (folder / "model_config.json").write_text(readable_json(description))
        geometry = {"name": self.config.data.geometry}
        (folder / "geometry.json").write_text(readable_json(geometry))


def _requirements() -> list[str]:
    """Pinned pip requirements of a logged model (given explicitly: MLflow's inference would import the model
    in a subprocess, which is slow and finds nothing caloray does not already declare)."""
    from importlib import metadata

    pins = []
    for package in ("caloray", "torch", "zuko", "mlflow", "numpy", "pandas"):
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def _now() -> int:
    return int(time.time() * 1000)
