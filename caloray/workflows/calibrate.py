"""Workflow `calibrate`: per-shower MLE energies, resolutions, asymmetries and flags of shower files with a
trained flow (`caloray.pipelines.calibrate.calibrate_files`), and the bias table of fixed-energy samples."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caloray.errors import ConfigError
from caloray.io import expand_paths
from caloray.pipelines.calibrate import CalibrationRun, ModelReference, calibrate_files, feature_voxels
from caloray.provenance import write_provenance
from caloray.workflows import Result


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


def model_reference(model: str, tracking_uri: str | None) -> ModelReference:
    """What the actors load: `model` with its registry URI resolved here, on the driver."""
    return ModelReference(model, tracking_uri=tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))


def model_and_range(model: str, tracking_uri: str | None, energy_range_mev: tuple[float | None, float | None],
                    ) -> tuple[ModelReference, tuple[float, float]]:
    """The model reference the actors load (URI resolved here, on the driver) and the E_pred range in MeV: the
    configured one, else the registered model's training range."""
    reference = model_reference(model, tracking_uri)
    if None not in energy_range_mev:
        return reference, energy_range_mev  # type: ignore[return-value]
    recorded = reference.energy_range_mev()
    if recorded is None:
        raise ConfigError(f"calibrate: model {model!r} records no training energy range; set energy_min_mev and "
                          "energy_max_mev (--energy-range-gev MIN MAX)")
    return reference, recorded


def model_voxels(model: str, tracking_uri: str | None) -> list[int]:
    """Voxels per shower the model reads (empty when it does not say): the model is loaded once, on the driver."""
    expected = feature_voxels(model_reference(model, tracking_uri)())
    return [] if expected is None else [int(expected)]


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Files, keys, shapes and the model's voxel count (with `check_values`, NaN/inf/negative energies), before
    Ray starts."""
    from caloray.io.checks import check_shower_inputs

    check_shower_inputs(list(config.inputs), voxels=model_voxels(config.model, config.tracking_uri),
                        check_values=check_values)


def run(config: Config) -> Result:
    """Calibrate (or resume) into `config.out_dir`; metrics: shower count, median E_pred/E_inc and, for a
    fixed-energy sample, the bias table's rows (`{E}GeV.mode`, `.full_resolution`, ...)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caloray.calibrate import bias_table
    from caloray.tables import format_table

    reference, (e_min, e_max) = model_and_range(config.model, config.tracking_uri,
                                                (config.energy_min_mev, config.energy_max_mev))
    inputs = tuple(str(p) for p in expand_paths(list(config.inputs)))
    if not inputs:
        raise ConfigError(f"calibrate: no shower files found in {list(config.inputs)}")
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
