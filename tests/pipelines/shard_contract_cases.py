"""The sharded workflows of the shard-runner contract test, each on tiny inputs built once into a folder.

Also a driver: `python shard_contract_cases.py WORKFLOW INPUTS OUT` runs one workflow (connecting to the Ray
cluster in RAY_ADDRESS), so the test can SIGKILL a real driver process mid-run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

UNITS = 6  # work units per run: enough to kill a driver between the first and the last


def build_inputs(root: Path) -> None:
    """Tiny models and shower files shared by every case (seconds, no training)."""
    import torch

    from caloray.geometry import get_geometry
    from caloray.io import write_showers
    from caloray.models import LayerEnergyFlow, save_model
    from caloray.superres import SuperResolutionFlow

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    geometry = get_geometry("ecal-hcal")
    write_showers(root / "ecal-hcal.h5", rng.exponential(20.0, (UNITS * 10, geometry.n_voxels)).astype(np.float32),
                  rng.uniform(5e3, 5e4, UNITS * 10), geometry="ecal-hcal")
    torch.manual_seed(0)
    save_model(LayerEnergyFlow(geometry.voxel_layer.tolist(), transforms=1, hidden_features=(8,)),
               root / "calib-flow.pt")
    save_model(LayerEnergyFlow(list(range(6)), transforms=1, hidden_features=(8,)), root / "generate-flow.pt")
    save_model(SuperResolutionFlow.for_geometry("ds2", "A", oracle=False, transforms=1, hidden_features=(8,)),
               root / "superres-flow.pt")
    for i in range(UNITS // 2):  # superres: one unit per file of ≤ 16 batches
        showers = rng.exponential(5.0, size=(3, 6480)) * (rng.random((3, 6480)) < 0.05)
        write_showers(root / "ds2" / f"in-{i}.h5", showers.astype(np.float32),
                      rng.uniform(1e3, 1e5, 3).astype(np.float32), geometry="ds2")


@dataclass(frozen=True)
class Case:
    """One workflow: `run(inputs, out, **change)` returns its output files in order; `changed` is a setting
    change that must be refused, naming `setting`."""

    name: str
    run: Callable[..., list[Path]]
    changed: dict[str, Any]
    setting: str


def _simulate(inputs: Path, out: Path, seed: int = 3) -> list[Path]:
    from caloray.sim import SimConfig, simulate_to_files

    config = SimConfig.preset("ds1-photons", n_showers=UNITS * 10 - 5, shard_size=10, seed=seed)
    return simulate_to_files(config, out, progress=False, actors=1)


def _generate(inputs: Path, out: Path, seed: int = 0) -> list[Path]:
    from caloray.generate import GenerationConfig, generate

    config = GenerationConfig(model=str(inputs / "generate-flow.pt"), n_showers=UNITS * 40 - 7, shard_size=40,
                              out=str(out), energies="log-uniform:1GeV-100GeV", seed=seed, validate_n=0, actors=1,
                              batch_size=16, max_restarts=0, tracking_uri=f"sqlite:///{inputs / 'mlflow.db'}")
    return generate(config, progress=False).shards


def _calibrate(inputs: Path, out: Path, seed: int = 0) -> list[Path]:
    from caloray.calibrate import MLESettings
    from caloray.workflows.calibrate import CalibrationRun, ModelReference, calibrate_files

    run = CalibrationRun(inputs=(str(inputs / "ecal-hcal.h5"),), out_dir=str(out), energy_min_mev=1e3,
                         energy_max_mev=1e5, rows_per_unit=10, seed=seed, actors=1,
                         mle=MLESettings(n_scan=16, rtol=1e-4))
    return calibrate_files(ModelReference(str(inputs / "calib-flow.pt")), run)


def _superres(inputs: Path, out: Path, seed: int = 0) -> list[Path]:
    from caloray.superres.pipeline import upsample_files

    return upsample_files(inputs / "superres-flow.pt", inputs / "ds2", out, batch_size=2, seed=seed, actors=1)


def _features(inputs: Path, out: Path, rows_per_unit: int = 10) -> list[Path]:
    from caloray.geometry import get_geometry
    from caloray.workflows.features import compute_feature_files

    return compute_feature_files([inputs / "ecal-hcal.h5"], get_geometry("ecal-hcal"), out,
                                 rows_per_unit=rows_per_unit)


CASES = {c.name: c for c in (
    Case("simulate", _simulate, {"seed": 4}, "seed"),
    Case("generate", _generate, {"seed": 1}, "seed"),
    Case("calibrate", _calibrate, {"seed": 1}, "seed"),
    Case("superres", _superres, {"seed": 1}, "seed"),
    Case("features", _features, {"rows_per_unit": 12}, "rows_per_unit"),
)}


def read_rows(paths: list[Path]) -> dict[str, np.ndarray]:
    """Every column of the output files, concatenated in file order (HDF5 datasets or Parquet columns)."""
    import h5py
    import pyarrow.parquet as pq

    columns: dict[str, list[np.ndarray]] = {}
    for path in paths:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            items = {n: np.asarray(table[n].to_numpy(zero_copy_only=False)) for n in table.column_names}
        else:
            with h5py.File(path) as f:
                items = {n: f[n][...] for n in f}
        for name, values in items.items():
            if values.dtype == object:
                values = np.stack(values) if isinstance(values[0], np.ndarray) else values.astype(str)
            columns.setdefault(name, []).append(values)
    return {k: np.concatenate(v) for k, v in columns.items()}


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    workflow, inputs_dir, out_dir = sys.argv[1:4]
    CASES[workflow].run(Path(inputs_dir), Path(out_dir))
