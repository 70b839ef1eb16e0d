"""Per-shower MLE calibration of shower files into Parquet shards, on the shared shard runner.

Work units are (input file, row range) of `rows_per_unit` rows; each becomes one Parquet shard
(`caloray.pipelines.shards`: folder lock, identity check, verified resume, atomic writes, manifest). Actors
load the model once each (on a GPU when the cluster has one). The dequantization noise of a unit is seeded
from (run seed, input sha256, row range), so results never depend on where the output folder is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from caloray.anomaly import anomaly_scores
from caloray.calibrate.engine import (
    calibrate_features,
    feature_log_jacobian,
    model_log_likelihood,
    shower_features,
)
from caloray.calibrate.mle import LogLikelihood, MLESettings
from caloray.errors import ShowerFileError
from caloray.io import expand_paths, inspect_shower_file, read_shower_rows
from caloray.models.base import Surrogate
from caloray.models.load import is_checkpoint
from caloray.pipelines.shards import Unit, UnitWorker, row_units, run_units, unit_seed

#: Loads the model inside an actor (so only a reference travels, never pickled weights); loaders also give
#: `identity()`, what pins the weights (registry version or checkpoint sha256).
ModelLoader = Callable[[], Surrogate]


@dataclass(frozen=True)
class CalibrationRun:
    """What to calibrate and how. Energies in MeV; `energy_*` is the model's allowed (training) range (None only
    in a workflow config that takes it from the model before it runs)."""

    inputs: tuple[str, ...]
    out_dir: str
    energy_min_mev: float | None = None
    energy_max_mev: float | None = None
    rows_per_unit: int = 4096
    batch_size: int = 1024
    seed: int = 0
    noise: bool = True
    actors: int | None = None
    mle: MLESettings = field(default_factory=MLESettings)


def calibrate_rows(model: Surrogate, showers: np.ndarray, run: CalibrationRun, generator: torch.Generator,
                   device: torch.device) -> dict[str, np.ndarray]:
    """Calibrate one block of showers (N, V) MeV in batches; returns MeV columns (asymmetry dimensionless)."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("e_pred_mev", "z_lo_mev", "z_hi_mev", "resolution_mev",
                                                         "asymmetry", "flags", "anomaly_score")}
    for lo in range(0, len(showers), run.batch_size):
        block = torch.as_tensor(showers[lo:lo + run.batch_size], dtype=torch.float64)
        features = shower_features(model, block, add_noise=run.noise, generator=generator).to(device)
        result = calibrate_features(model, features, run.energy_min_mev, run.energy_max_mev, run.mle)
        log_likelihood = model_log_likelihood(model, features)
        jacobian = feature_log_jacobian(model, features).double()
        # Spec §5 with E_rec = E_pred, as a density per MeV^L of layer energy: the feature density times the
        # preprocessing Jacobian (independent of z), so scores of different models' features compare.
        score = anomaly_scores(_per_mev(log_likelihood, jacobian), result.e_pred)
        for key, value in (("e_pred_mev", result.e_pred), ("z_lo_mev", result.z_lo), ("z_hi_mev", result.z_hi),
                           ("resolution_mev", result.resolution), ("asymmetry", result.asymmetry),
                           ("flags", result.flags), ("anomaly_score", score)):
            out[key].append(value.cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _per_mev(log_likelihood: LogLikelihood, jacobian: torch.Tensor) -> LogLikelihood:
    return lambda z, rows: log_likelihood(z, rows) + jacobian[rows, None]


def feature_voxels(model: Surrogate) -> int | None:
    """Voxels per shower the model (an ensemble: its first member) reads, or None when it does not say."""
    return getattr(model.members[0] if hasattr(model, "members") else model, "n_voxels", None)


class _Calibrator(UnitWorker):
    """Loads the model once per actor, then calibrates one (file, row range) unit into Parquet columns."""

    def __init__(self, loader: ModelLoader, run: CalibrationRun, provenance: dict[str, str]) -> None:
        self.loader, self.run, self.provenance = loader, run, provenance

    def setup(self, device: str) -> None:
        self.device = torch.device(device)
        self.model = self.loader().to(self.device).eval()
        if self.device.type == "cpu":
            self.model = self.model.double()

    def compute(self, unit: Unit) -> pa.Table:
        start, stop = unit.key["start"], unit.key["stop"]
        data = read_shower_rows(unit.source, start, stop)
        expected = feature_voxels(self.model)
        if expected is not None and data["showers"].shape[1] != expected:
            raise ShowerFileError(f"{unit.source}: showers have {data['showers'].shape[1]} voxels, the model "
                                  f"expects {expected} (another geometry?)")
        generator = torch.Generator().manual_seed(unit_seed(self.run.seed, unit.key["input_sha256"], start, stop))
        columns = calibrate_rows(self.model, data["showers"], self.run, generator, self.device)
        columns["source_file"] = np.full(stop - start, unit.source)
        columns["source_row"] = np.arange(start, stop, dtype=np.int64)
        columns["incident_energy_mev"] = data["incident_energies"].astype(np.float64)
        return pa.table(columns).replace_schema_metadata({k: str(v) for k, v in self.provenance.items()})

    def write(self, path: Path, result: pa.Table) -> None:
        pq.write_table(result, path)


def calibration_identity(loader: ModelLoader, run: CalibrationRun) -> dict[str, Any]:
    """The settings that decide every shard's values (not the folders or the actor count)."""
    settings = dataclasses.asdict(run)
    for name in ("inputs", "out_dir", "actors"):
        settings.pop(name)
    return {"workflow": "calibrate", "model": loader.identity(), **settings}


def calibrate_files(loader: ModelLoader, run: CalibrationRun, provenance: dict[str, str] | None = None,
                    n_voxels: int | None = None) -> list[Path]:
    """Run (or resume) the calibration; returns every shard path of the run, in input order.

    Input files are checked before any actor starts (readable; `n_voxels` per shower when given).
    """
    inputs = []
    for path in expand_paths(list(run.inputs)):
        info = inspect_shower_file(path)
        if n_voxels is not None and info.n_voxels != n_voxels:
            raise ShowerFileError(f"{path}: showers have {info.n_voxels} voxels, the model expects {n_voxels}")
        inputs.append((path, info.n_showers))
    units = row_units("calib", ".parquet", inputs, run.rows_per_unit)
    records = run_units(run.out_dir, calibration_identity(loader, run), units,
                        _Calibrator(loader, run, provenance or {}), actors=run.actors)
    return [Path(run.out_dir) / r.file for r in records]


class ModelReference:
    """A model named on the command line: a checkpoint path or a registry `NAME[:VERSION]` or `NAME@ALIAS`.

    Picklable and light: actors call it to load the model themselves (weights_only).
    """

    def __init__(self, name: str, tracking_uri: str | None = None) -> None:
        self.name = name
        self.tracking_uri = tracking_uri

    def __call__(self) -> Surrogate:
        from caloray.tracking import load

        return load(self.name, tracking_uri=self.tracking_uri)

    def identity(self) -> dict[str, Any]:
        """What pins the weights: registry name and version, or the checkpoint's file name and sha256."""
        from caloray.generate.models import resolve_model_source

        source = resolve_model_source(self.name, self.tracking_uri)
        return {"name": source.name, "version": source.version, "sha256": source.sha256}

    def energy_range_mev(self) -> tuple[float, float] | None:
        """The training range recorded in the registry, or None (checkpoint files do not record it)."""
        if is_checkpoint(self.name):
            return None
        from caloray.tracking import registered_energy_range
        from caloray.tracking.registry import split_model_ref

        name, version = split_model_ref(self.name)
        return registered_energy_range(name, version, tracking_uri=self.tracking_uri)


class MemberFilesLoader:
    """Picklable loader: rebuilds an ensemble from member checkpoint files inside each actor."""

    def __init__(self, member_paths: list[str]) -> None:
        self.member_paths = member_paths

    def __call__(self) -> Surrogate:
        from caloray.models import Ensemble, load_model

        return Ensemble.from_members([load_model(p) for p in self.member_paths])

    def identity(self) -> dict[str, Any]:
        """The members' checkpoint sha256s, in order."""
        from caloray.provenance import sha256_file

        return {"members": [sha256_file(p) for p in self.member_paths]}
