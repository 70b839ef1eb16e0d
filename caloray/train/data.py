"""Driver-side data preparation: load, check against geometry and model, split train/validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from caloray.errors import ConfigError
from caloray.models.base import Surrogate
from caloray.train.config import TrainConfig

if TYPE_CHECKING:
    import ray.data

REQUIRED_COLUMNS = ("showers", "incident_energies")


@dataclass
class PreparedData:
    """The materialized train/validation split and what was checked about it."""

    train: ray.data.Dataset
    validation: ray.data.Dataset
    n_voxels: int
    n_train: int
    n_validation: int
    energy_min_mev: float = float("nan")
    energy_max_mev: float = float("nan")


def load_showers(config: TrainConfig) -> ray.data.Dataset:
    """`caloray.io.read_showers` over `data.paths` (checked against `data.geometry`); no paths is an error."""
    if not config.data.paths:
        raise ConfigError("data.paths is empty: list the shower files to train on (or pass a dataset)")
    from caloray.io import read_showers

    geometry = None
    if config.data.geometry is not None:
        from caloray.geometry import get_geometry

        geometry = get_geometry(config.data.geometry)
    return read_showers(config.data.paths, geometry=geometry)


def prepare_data(dataset: ray.data.Dataset, config: TrainConfig, model: Surrogate) -> PreparedData:
    """Check columns, emptiness and voxel counts (data vs geometry vs model), then split once.

    The split shuffles all rows with `data.split_seed` and materializes both parts, so every member
    and every resumed run sees the same rows and Ray Data needs no CPUs while members train.
    """
    where = ", ".join(config.data.paths) or "the given dataset"
    missing = [c for c in REQUIRED_COLUMNS if c not in (dataset.columns() or [])]
    if missing:
        raise ConfigError(f"{where}: dataset lacks column(s) {missing}; expected {list(REQUIRED_COLUMNS)}")
    first = dataset.take(1)
    if not first:
        raise ConfigError(f"{where}: no showers to train on (the dataset is empty)")
    n_voxels = int(np.asarray(first[0]["showers"]).size)
    _check_voxels(n_voxels, config, model, where)
    train, validation = dataset.select_columns(list(REQUIRED_COLUMNS)).train_test_split(
        config.data.validation_fraction, shuffle=True, seed=config.data.split_seed
    )
    n_train, n_validation = train.count(), validation.count()
    workers = config.ensemble.num_workers
    if n_train < workers or n_validation < workers:
        raise ConfigError(
            f"{where}: {n_train} training / {n_validation} validation rows are too few for"
            f" {workers} workers per member"
        )
    # The training range of E_inc: calibration never reports energies outside it.
    energy_min = float(min(train.min("incident_energies"), validation.min("incident_energies")))
    energy_max = float(max(train.max("incident_energies"), validation.max("incident_energies")))
    return PreparedData(train, validation, n_voxels, n_train, n_validation, energy_min, energy_max)


def model_n_voxels(model: Surrogate) -> int | None:
    """Voxels per shower the model expects, when it says: `n_voxels` or the length of `voxel_layer`."""
    value = getattr(model, "n_voxels", None)
    if isinstance(value, int):
        return value
    config: dict[str, Any] = model.config()
    if isinstance(config.get("n_voxels"), int):
        return config["n_voxels"]
    if config.get("voxel_layer") is not None:
        return len(config["voxel_layer"])
    return None


def _check_voxels(n_voxels: int, config: TrainConfig, model: Surrogate, where: str) -> None:
    if config.data.geometry is not None:
        from caloray.geometry import get_geometry

        geometry = get_geometry(config.data.geometry)
        if geometry.n_voxels != n_voxels:
            raise ConfigError(
                f"{where}: showers have {n_voxels} voxels but geometry {geometry.name!r} has"
                f" {geometry.n_voxels}; check data.geometry"
            )
    expected = model_n_voxels(model)
    if expected is not None and expected != n_voxels:
        geometry_note = f" (geometry {config.data.geometry!r})" if config.data.geometry else ""
        raise ConfigError(
            f"{where}: showers have {n_voxels} voxels{geometry_note} but model {model.kind!r} expects"
            f" {expected}; the model was configured for another geometry"
        )
