"""Small synthetic shower datasets for the training tests (ECAL+HCAL voxel layout)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from caloray.geometry import get_geometry


def synthetic_rows(n: int, seed: int = 0, n_voxels: int | None = None) -> list[dict[str, Any]]:
    """`n` rows with sparse positive voxel energies summing to ~60 % of E_inc ∈ [1, 100] GeV (MeV)."""
    n_voxels = n_voxels or get_geometry("ecal-hcal").n_voxels
    rng = np.random.default_rng(seed)
    energies = rng.uniform(1e3, 1e5, n)
    fractions = rng.dirichlet(np.full(n_voxels, 0.05), n)
    showers = (fractions * (0.6 * energies[:, None])).astype(np.float32)
    return [{"showers": s, "incident_energies": float(e)} for s, e in zip(showers, energies, strict=True)]


@pytest.fixture
def shower_file(tmp_path):
    """Factory: an ECAL+HCAL CaloChallenge-layout HDF5 file of `n` synthetic showers."""
    from caloray.io import write_showers

    def make(n: int = 240, seed: int = 0):
        rows = synthetic_rows(n, seed)
        showers = np.stack([row["showers"] for row in rows])
        energies = np.array([row["incident_energies"] for row in rows])
        return write_showers(tmp_path / f"showers-{seed}.h5", showers, energies, geometry="ecal-hcal")

    return make


@pytest.fixture
def make_dataset(ray_local):
    """Factory: a ray.data.Dataset of `n` synthetic ECAL+HCAL showers."""

    def make(n: int = 240, seed: int = 0, n_voxels: int | None = None):
        return ray_local.data.from_items(synthetic_rows(n, seed, n_voxels), override_num_blocks=4)

    return make


@pytest.fixture
def flow_config(tmp_path):
    """Factory: a config dict for a tiny LayerEnergyFlow ensemble on ecal-hcal (tracking off)."""

    def make(name: str = "run", **overrides: Any) -> dict[str, Any]:
        return _merge(_small_flow_config(tmp_path / name), overrides)

    return make


def _small_flow_config(output_dir) -> dict[str, Any]:
    return {
        "model": {"kind": "layer-energy-flow", "kwargs": {"transforms": 1, "hidden_features": [8]}},
        "data": {"geometry": "ecal-hcal", "validation_fraction": 0.25, "shuffle_buffer": 100},
        "optimizer": {"lr": 1e-3},
        "schedule": {"kind": "multistep", "milestones": [1], "gamma": 0.5},
        "epochs": 2,
        "batch_size": 40,
        "seed": 7,
        "output_dir": str(output_dir),
        "tracking": {"enabled": False},
    }


def _merge(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
