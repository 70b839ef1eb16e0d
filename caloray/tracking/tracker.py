"""MLflow tracking of an ensemble: one parent run, one nested run per member, registry at the end."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from caloray.config import to_dict
from caloray.models import Ensemble, load_model, save_model
from caloray.models.transforms import InvertibleTransform
from caloray.tracking.lineage import log_shower_inputs, source_tags
from caloray.tracking.params import readable_json
from caloray.tracking.plots import plot_loss_curves
from caloray.tracking.registry import (
    CANDIDATE_ALIAS,
    ENSEMBLE_ARTIFACT,
    ENSEMBLE_FILE,
    MANIFEST_FILE,
    register_ensemble,
)
from caloray.tracking.run import Run

if TYPE_CHECKING:
    from caloray.train.config import TrainConfig
    from caloray.train.result import MemberResult, TrainResult

METRIC_KEYS = ("train_loss", "val_loss", "lr", "epoch_seconds", "train_events_per_s")


class EnsembleTracker:
    """Logs a training to MLflow: the ensemble's `caloray.tracking.Run` and one child run per member."""

    def __init__(self, run: Run, config: TrainConfig):
        self.run = run
        self.client, self.run_id, self.tracking_uri = run.client, run.run_id, run.tracking_uri
        self.config = config
        self.member_runs: dict[int, str] = {}
        self.data_summary: dict[str, int | float] = {}
        #: A few held-out rows ("showers" (n, V) MeV, "incident_energies" (n,) MeV): the input example.
        self.example: dict[str, Any] = {}

    @classmethod
    def start(cls, config: TrainConfig, output_dir: Path, *, data_summary: dict[str, int | float],
              example: dict[str, Any] | None = None) -> EnsembleTracker:
        """Create (or reuse) the experiment and open the ensemble's parent run with its params, source tags and
        training data (`log_inputs`). `example`: a few held-out rows, the registered model's input example."""
        tags = {
            "caloray.role": "ensemble",
            "caloray.model_kind": config.model.kind,
            "caloray.geometry": str(config.data.geometry),
        }
        params = to_dict(config)
        params["data"] = dict(params["data"]) | {k: str(v) for k, v in data_summary.items()}
        run = Run.start(config.tracking.experiment, f"{config.model.kind}-x{config.ensemble.members}", output_dir,
                        tracking_uri=config.tracking.tracking_uri, params=params, tags=tags, system_metrics=True)
        tracker = cls(run, config)
        tracker.data_summary, tracker.example = dict(data_summary), dict(example or {})
        log_shower_inputs(run.client, run.run_id, config.data.paths, context="training",
                          geometry=config.data.geometry)
        return tracker

    def log_member(self, member: MemberResult) -> str:
        """A nested run for `member`: params, per-epoch metrics, checkpoint, configs, loss curve."""
        params = to_dict(self.config) | {"member": {"index": member.index, "seed": member.seed}}
        with self.run.child(f"member-{member.index:02d}", params=params,
                            tags={"caloray.role": "member", "caloray.member": str(member.index)}) as run:
            run.log_history(member.history, METRIC_KEYS, step_key="epoch")
            run.client.log_artifacts(run.run_id, str(member.checkpoint_dir), artifact_path="checkpoint")
            with tempfile.TemporaryDirectory() as tmp:
                self._write_descriptions(Path(tmp), load_model(member.model_path))
                plot_loss_curves({f"member {member.index}": member.history}, Path(tmp) / "loss_curve.png")
                run.client.log_artifacts(run.run_id, tmp)
        self.member_runs[member.index] = run.run_id
        return run.run_id

    def finish(self, result: TrainResult) -> None:
        """Log ensemble metrics and artifacts, register it if configured, close the parent run."""
        histories = {f"member {m.index}": m.history for m in result.members}
        final = [m.final_val_loss for m in result.members]
        mean = sum(final) / len(final)
        self.run.log_metrics({"ensemble_final_val_loss_mean": mean,
                              "ensemble_final_val_loss_spread": max(final) - min(final)})
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
            self.run.set_tags({"caloray.registered": f"{name}:{version}"})
        self.run.finish()

    def fail(self, error: BaseException) -> None:
        """End the parent run FAILED (KILLED on Ctrl-C), with the error as a tag."""
        self.run.fail(error)

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
