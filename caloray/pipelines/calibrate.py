"""Ray Data pipeline: shower files → per-shower MLE calibration Parquet shards, resumable.

Work is split into units of (file, row range); each unit becomes one Parquet shard with a deterministic
name, written atomically. Units whose shard already exists are skipped, so an interrupted run resumes
where it stopped. A pool of actors loads the model once each (on a GPU when the cluster has one) and
calibrates every unit it receives in batched tensors.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import torch

from caloray.calibrate.engine import calibrate_features, feature_log_jacobian, shower_features
from caloray.calibrate.mle import MLESettings
from caloray.io import expand_paths, inspect_shower_file, read_shower_rows
from caloray.models.base import Surrogate

#: Loads the model inside an actor (so only a reference travels, never pickled weights).
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


def unit_name(path: Path, start: int, stop: int) -> str:
    """Deterministic shard name of a work unit: file stem, a short path hash and the row range."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return f"calib-{path.stem}-{digest}-{start:09d}-{stop:09d}.parquet"


def plan_units(run: CalibrationRun, geometry_voxels: int | None = None) -> list[dict]:
    """All work units of the run, marking those whose shard already exists as done."""
    units = []
    for path in expand_paths(list(run.inputs)):
        info = inspect_shower_file(path)
        if geometry_voxels is not None and info.n_voxels != geometry_voxels:
            raise ValueError(f"{path}: showers have {info.n_voxels} voxels, the model expects {geometry_voxels}")
        for start in range(0, info.n_showers, run.rows_per_unit):
            stop = min(start + run.rows_per_unit, info.n_showers)
            shard = Path(run.out_dir) / unit_name(path, start, stop)
            units.append({"file": str(path), "start": start, "stop": stop, "shard": str(shard),
                          "done": shard.exists()})
    return units


def calibrate_rows(model: Surrogate, showers: np.ndarray, run: CalibrationRun, generator: torch.Generator,
                   device: torch.device) -> dict[str, np.ndarray]:
    """Calibrate one block of showers (N, V) MeV in batches; returns MeV columns."""
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("e_pred_mev", "z_lo_mev", "z_hi_mev", "flags", "anomaly_score")
    }
    for lo in range(0, len(showers), run.batch_size):
        block = torch.as_tensor(showers[lo:lo + run.batch_size], dtype=torch.float64)
        features = shower_features(model, block, add_noise=run.noise, generator=generator)
        result = calibrate_features(model, features.to(device), run.energy_min_mev, run.energy_max_mev, run.mle)
        # Anomaly score (spec §5) with E_rec = E_pred: −log p(x | E_pred) per MeV^L of layer energy.
        score = -(result.log_likelihood_max + feature_log_jacobian(model, features.to(device)).double())
        for key, value in (("e_pred_mev", result.e_pred), ("z_lo_mev", result.z_lo), ("z_hi_mev", result.z_hi),
                           ("flags", result.flags), ("anomaly_score", score)):
            out[key].append(value.cpu().numpy())
    columns = {k: np.concatenate(v) for k, v in out.items()}
    columns["resolution_mev"] = 0.5 * (columns["z_hi_mev"] - columns["z_lo_mev"])
    columns["asymmetry"] = (columns["e_pred_mev"] - columns["z_lo_mev"]) / (columns["z_hi_mev"] - columns["e_pred_mev"])
    return columns


class _UnitCalibrator:
    """Ray actor: loads the model once, then calibrates whole work units and writes their shards."""

    def __init__(self, loader: ModelLoader, run: CalibrationRun, provenance: dict[str, str]) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = loader().to(self.device).eval()
        if self.device.type == "cpu":
            self.model = self.model.double()
        self.run = run
        self.provenance = provenance

    def __call__(self, units: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        written = []
        for path, start, stop, shard in zip(units["file"], units["start"], units["stop"], units["shard"], strict=True):
            data = read_shower_rows(path, int(start), int(stop))
            feature_model = self.model.members[0] if hasattr(self.model, "members") else self.model
            expected = getattr(feature_model, "n_voxels", None)
            if expected is not None and data["showers"].shape[1] != expected:
                raise ValueError(f"{path}: showers have {data['showers'].shape[1]} voxels, the model expects "
                                 f"{expected} (another geometry?)")
            # Dequantization noise seeded per (run seed, unit): reruns give identical shards.
            seed = int.from_bytes(hashlib.sha1(f"{self.run.seed}:{shard}".encode()).digest()[:8], "little")
            generator = torch.Generator().manual_seed(seed)
            columns = calibrate_rows(self.model, data["showers"], self.run, generator, torch.device(self.device))
            columns["source_file"] = np.full(stop - start, path)
            columns["source_row"] = np.arange(start, stop, dtype=np.int64)
            columns["incident_energy_mev"] = data["incident_energies"].astype(np.float64)
            table = pa.table(columns).replace_schema_metadata({k: str(v) for k, v in self.provenance.items()})
            tmp = Path(shard).with_name(f".{Path(shard).name}.tmp{os.getpid()}")
            pq.write_table(table, tmp)
            os.replace(tmp, shard)
            written.append(shard)
        return {"shard": np.array(written)}


def calibrate_files(loader: ModelLoader, run: CalibrationRun, provenance: dict[str, str] | None = None,
                    n_voxels: int | None = None) -> list[Path]:
    """Run (or resume) the calibration; returns every shard path of the run, in input order."""
    Path(run.out_dir).mkdir(parents=True, exist_ok=True)
    units = plan_units(run, n_voxels)
    todo = [u for u in units if not u["done"]]
    if todo:
        gpus = ray.cluster_resources().get("GPU", 0)
        actors = run.actors or max(1, int(gpus) if gpus else min(len(todo), int(ray.cluster_resources().get("CPU", 1))))
        ds = ray.data.from_items([{k: u[k] for k in ("file", "start", "stop", "shard")} for u in todo])
        with warnings.catch_warnings():  # max_restarts has no named parameter yet in Ray 2.60
            warnings.simplefilter("ignore", DeprecationWarning)
            ds = ds.map_batches(
                _UnitCalibrator,
                fn_constructor_args=(loader, run, provenance or {}),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=min(actors, len(todo))),
                num_gpus=1 if gpus else 0,
                num_cpus=1,
                # A failed unit is simply recomputed on the next run (resume); no actor restarts needed.
                max_restarts=0,
            )
        ds.materialize()
    return [Path(u["shard"]) for u in units]


class ModelReference:
    """A model named on the command line: a checkpoint path or a registry `NAME[:VERSION]` or `NAME@ALIAS`.

    Picklable and light: actors call it to load the model themselves (weights_only).
    """

    def __init__(self, name: str, tracking_uri: str | None = None) -> None:
        self.name = name
        self.tracking_uri = tracking_uri

    def __call__(self) -> Surrogate:
        from caloray.models import load

        return load(self.name, tracking_uri=self.tracking_uri)

    def energy_range_mev(self) -> tuple[float, float] | None:
        """The training range recorded in the registry, or None (checkpoint files do not record it)."""
        if Path(self.name).suffix in (".pt", ".pth") or Path(self.name).is_file():
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
