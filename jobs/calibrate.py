"""Ray Job entrypoint: MLE energy calibration of shower files with a trained flow (Ray Data actors).

    python jobs/calibrate.py --config jobs/configs/calibrate-demo.yaml --out /mnt/caloray/calibrated

For every shower: E_pred = argmax_z p(x | z) within the model's training range, the Δ(−2 log L) = 1 crossings,
resolution, asymmetry, flags and the anomaly score, as Parquet shards (`caloray.pipelines.calibrate`).
Resumable: shards already written are skipped, so rerunning the job finishes an interrupted one.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _entry import finish, job_parser, run_script

from caloray.calibrate.mle import MLESettings
from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.io import expand_paths
from caloray.pipelines.calibrate import CalibrationRun, ModelReference, calibrate_files
from caloray.runtime import init_ray


@dataclass
class CalibrateJob:
    """What to calibrate with which model. Energies in MeV.

    model: registry `NAME[:VERSION]` (newest when no version) or a checkpoint file (.pt).
    inputs: shower files, folders or globs. energy_min_mev/energy_max_mev: the allowed E_pred range; unset →
    the range the registered model was trained on (checkpoint files record none: set both).
    tracking_uri: MLflow server of the registry; unset → MLFLOW_TRACKING_URI.
    """

    model: str
    inputs: list[str]
    out: str = "outputs/calibrate"
    energy_min_mev: float | None = None
    energy_max_mev: float | None = None
    rows_per_unit: int = 4096
    batch_size: int = 1024
    seed: int = 0
    noise: bool = True
    actors: int | None = None
    mle: MLESettings = field(default_factory=MLESettings)
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("calibrate: inputs must name at least one shower file, folder or glob")
        if (self.energy_min_mev is None) != (self.energy_max_mev is None):
            raise ConfigError("calibrate: set both energy_min_mev and energy_max_mev, or neither")
        if self.rows_per_unit < 1 or self.batch_size < 1:
            raise ConfigError("calibrate: rows_per_unit and batch_size must be ≥ 1")


def energy_range(job: CalibrateJob, reference: ModelReference) -> tuple[float, float]:
    """The configured E_pred range, else the registered model's training range (MeV)."""
    if job.energy_min_mev is not None and job.energy_max_mev is not None:
        return job.energy_min_mev, job.energy_max_mev
    recorded = reference.energy_range_mev()
    if recorded is None:
        raise ConfigError(f"calibrate: model {job.model!r} records no training energy range; "
                          "set energy_min_mev and energy_max_mev")
    return recorded


def calibration_summary(shards: list[Path]) -> dict[str, float]:
    """Median E_pred/E_inc, its spread and the flagged fraction over all shards (for the job record)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(s, columns=["e_pred_mev", "incident_energy_mev", "flags"])
                              for s in shards])
    ratio = table["e_pred_mev"].to_numpy() / table["incident_energy_mev"].to_numpy()
    finite = ratio[np.isfinite(ratio)]
    q16, q50, q84 = np.percentile(finite, [16, 50, 84]) if finite.size else (np.nan,) * 3
    return {"n_showers": float(len(ratio)), "median_response": float(q50),
            "response_half_width_68": float(0.5 * (q84 - q16)),
            "flagged_fraction": float(np.mean(table["flags"].to_numpy() != 0)) if len(ratio) else 0.0}


def run(job: CalibrateJob) -> tuple[list[Path], dict[str, float]]:
    """Calibrate (or resume) into `job.out`; returns the shard paths and a summary. Ray must be connected."""
    # Resolved here, on the driver: the actors load the model with exactly this URI.
    reference = ModelReference(job.model, tracking_uri=job.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    e_min, e_max = energy_range(job, reference)
    inputs = tuple(str(p) for p in expand_paths(job.inputs))
    if not inputs:
        raise ConfigError(f"calibrate: no shower files found in {job.inputs}")
    calibration = CalibrationRun(inputs=inputs, out_dir=job.out, energy_min_mev=e_min, energy_max_mev=e_max,
                                 rows_per_unit=job.rows_per_unit, batch_size=job.batch_size, seed=job.seed,
                                 noise=job.noise, actors=job.actors, mle=job.mle)
    shards = calibrate_files(reference, calibration, provenance={"model": job.model, "seed": str(job.seed)})
    return shards, calibration_summary(shards)


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__.splitlines()[0], out_help="output folder of the Parquet shards (overrides `out`)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    job = load_yaml(CalibrateJob, args.config)
    if args.out:
        job.out = args.out
    init_ray()
    shards, summary = run(job)
    print(f"calibrated {int(summary['n_showers'])} showers into {len(shards)} shard(s) in {job.out}: median "
          f"E_pred/E_inc {summary['median_response']:.3f} ± {summary['response_half_width_68']:.3f} (68%)", flush=True)
    finish(Path(job.out), job, stage="calibrate", config_file=str(args.config), summary=summary,
           shards=[str(s) for s in shards])
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
