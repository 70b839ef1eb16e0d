"""Workflow `calibrate`: per-shower MLE energies, resolutions, asymmetries, flags and anomaly scores of shower
files with a trained flow into Parquet shards, on the shared shard runner, and the bias table of fixed-energy
samples.

Work units are (input file, row range) of `rows_per_unit` rows; each becomes one Parquet shard
(`caloray.pipelines.shards`: folder lock, identity check, verified resume, atomic writes, manifest). Actors
load the model once each (on a GPU when the cluster has one). The dequantization noise of a unit is seeded
from (run seed, input sha256, row range), so results never depend on where the output folder is.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from caloray.calibrate.engine import calibrate_showers
from caloray.calibrate.mle import MLESettings
from caloray.errors import ConfigError, ShowerFileError
from caloray.io import expand_paths, inspect_shower_file, read_shower_rows
from caloray.io.checks import check_shower_inputs
from caloray.models.base import Surrogate
from caloray.models.load import is_checkpoint
from caloray.pipelines.shards import Unit, UnitWorker, row_units, run_units, unit_seed
from caloray.provenance import write_provenance
from caloray.workflows import Result

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
        run = self.run
        columns = calibrate_showers(self.model, data["showers"], run.energy_min_mev, run.energy_max_mev, run.mle,
                                    batch_size=run.batch_size, add_noise=run.noise, generator=generator,
                                    device=self.device)
        columns["source_file"] = np.full(stop - start, unit.source)
        columns["source_row"] = np.arange(start, stop, dtype=np.int64)
        columns["incident_energy_mev"] = data["incident_energies"].astype(np.float64)
        return pa.table(columns).replace_schema_metadata({k: str(v) for k, v in self.provenance.items()})

    def write(self, path: Path, result: pa.Table) -> None:
        pq.write_table(result, path)


def calibration_identity(loader: ModelLoader, run: CalibrationRun) -> dict[str, Any]:
    """The settings that decide every shard's values (not the folders or the actor count)."""
    settings = {k: v for k, v in dataclasses.asdict(run).items() if k not in ("inputs", "out_dir", "actors")}
    return {"workflow": "calibrate", "model": loader.identity(), **settings}


def calibrate_files(loader: ModelLoader, run: CalibrationRun, provenance: dict[str, str] | None = None) -> list[Path]:
    """Run (or resume) the calibration; returns every shard path of the run, in input order. The workers check
    each unit's voxel count against the model (`check_inputs` of the workflow does so before Ray starts)."""
    inputs = [(path, inspect_shower_file(path).n_showers) for path in expand_paths(list(run.inputs))]
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
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")  # resolved where it is made

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


@dataclass(frozen=True, kw_only=True)
class Config(CalibrationRun):
    """A `CalibrationRun` (inputs: files, folders or globs; energies in MeV) with the model that calibrates.

    model: registry `NAME[:VERSION]`, `NAME@ALIAS` or a checkpoint file (.pt). energy_min_mev/energy_max_mev:
    the allowed E_pred range; unset → the range the registered model was trained on (checkpoints record none).
    tracking_uri: MLflow server of the registry; unset → MLFLOW_TRACKING_URI.
    n_bootstrap, max_table_energies: the bias table (KDE mode of E_pred/E_true per true energy, bootstrapped)
    is written to OUT/summary.txt when the sample has at most `max_table_energies` distinct true energies.
    """

    model: str
    tracking_uri: str | None = None
    n_bootstrap: int = 20
    max_table_energies: int = 20

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("calibrate: inputs must name at least one shower file, folder or glob")
        if (self.energy_min_mev is None) != (self.energy_max_mev is None):
            raise ConfigError("calibrate: set both energy_min_mev and energy_max_mev, or neither")
        if self.rows_per_unit < 1 or self.batch_size < 1:
            raise ConfigError("calibrate: rows_per_unit and batch_size must be ≥ 1")


def model_and_range(model: str, tracking_uri: str | None, energy_range_mev: tuple[float | None, float | None],
                    ) -> tuple[ModelReference, tuple[float, float]]:
    """The model reference the actors load (URI resolved here, on the driver) and the E_pred range in MeV: the
    configured one, else the registered model's training range."""
    reference = ModelReference(model, tracking_uri)
    if None not in energy_range_mev:
        return reference, energy_range_mev  # type: ignore[return-value]
    recorded = reference.energy_range_mev()
    if recorded is None:
        raise ConfigError(f"calibrate: model {model!r} records no training energy range; set energy_min_mev and "
                          "energy_max_mev (--energy-range-gev MIN MAX)")
    return reference, recorded


def model_voxels(model: str, tracking_uri: str | None) -> list[int]:
    """Voxels per shower the model reads (empty when it does not say): the model is loaded once, on the driver."""
    expected = feature_voxels(ModelReference(model, tracking_uri)())
    return [] if expected is None else [int(expected)]


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Files, keys, shapes and the model's voxel count (with `check_values`, NaN/inf/negative energies), before
    Ray starts."""
    check_shower_inputs(list(config.inputs), voxels=model_voxels(config.model, config.tracking_uri),
                        check_values=check_values)


def run(config: Config) -> Result:
    """Calibrate (or resume) into `config.out_dir`; metrics: shower count, median E_pred/E_inc and, for a
    fixed-energy sample, the bias table's rows (`{E}GeV.mode`, `.full_resolution`, ...)."""
    from caloray.calibrate import bias_table
    from caloray.tables import format_table

    reference, (e_min, e_max) = model_and_range(config.model, config.tracking_uri,
                                                (config.energy_min_mev, config.energy_max_mev))
    inputs = tuple(str(p) for p in expand_paths(list(config.inputs)))  # raises when nothing is found
    resolved = dataclasses.replace(config, inputs=inputs, energy_min_mev=e_min, energy_max_mev=e_max)
    out = Path(config.out_dir)
    shards = calibrate_files(reference, resolved, provenance={"model": config.model, "seed": str(config.seed)})
    # Written after the shards (a failed run leaves no record claiming them); the runner's folder lock and
    # identity check refused any run into this folder with other settings.
    write_provenance(out / "provenance.json", resolved, stage="calibrate")
    columns = ["e_pred_mev", "incident_energy_mev", "resolution_mev", "asymmetry", "flags"]
    table = pa.concat_tables([pq.read_table(s, columns=columns) for s in shards])
    truth, pred = table["incident_energy_mev"].to_numpy(), table["e_pred_mev"].to_numpy()
    metrics = {"n_showers": float(len(truth)),
               "median_response": float(np.nanmedian(pred / truth)) if len(truth) else float("nan"),
               "flagged_fraction": float(np.mean(table["flags"].to_numpy() != 0)) if len(truth) else 0.0}
    energies = np.unique(truth)
    if 0 < len(energies) <= config.max_table_energies:
        rows = bias_table(truth, pred, table["resolution_mev"].to_numpy(), table["asymmetry"].to_numpy(),
                          n_bootstrap=config.n_bootstrap, seed=config.seed)
        for row in rows:
            key = f"{row['E_true [GeV]']:g}GeV"
            metrics |= {f"{key}.mode": row["mode"], f"{key}.mode_unc": row["±"],
                        f"{key}.full_resolution": row["full resolution"],
                        f"{key}.mean_shower_resolution": row["mean per-shower resolution"],
                        f"{key}.frac_asymmetry_above_1": row["Δ_L/Δ_U > 1"]}
        text = format_table(rows, title=f"flow MLE calibration with {config.model}: E_pred/E_true per true energy")
    else:
        text = (f"{len(truth)} showers calibrated with {config.model}; median E_pred/E_true "
                f"{metrics['median_response']:.4f} (no fixed-energy table: the sample has {len(energies)} distinct "
                "true energies)")
    (out / "summary.txt").write_text(text + "\n")
    text += f"\ncalibrated {len(shards)} shard(s) → {out} (allowed range {e_min / 1e3:g}–{e_max / 1e3:g} GeV)"
    return Result(out=out, metrics=metrics, paths={"shards": shards}, summary=text)
