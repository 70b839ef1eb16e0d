"""A small tracked and registered LayerEnergyFlow ensemble, trained once per module that asks for it."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.config import from_dict
from caloray.geometry import get_geometry
from caloray.train import TrainConfig, train_ensemble

REGISTRY_NAME = "test-flow-ensemble"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh SQLite store in tmp_path (MLflow 3 refuses new `file:` stores; no MLFLOW_TRACKING_URI)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'store.db'}"


def _rows(n: int, seed: int) -> list[dict]:
    n_voxels = get_geometry("ecal-hcal").n_voxels
    rng = np.random.default_rng(seed)
    energies = rng.uniform(1e3, 1e5, n)
    showers = (rng.dirichlet(np.full(n_voxels, 0.05), n) * (0.6 * energies[:, None])).astype(np.float32)
    return [{"showers": s, "incident_energies": float(e)} for s, e in zip(showers, energies, strict=True)]


@pytest.fixture(scope="module")
def tracked_ensemble(ray_local, tmp_path_factory):
    """2 members × 2 epochs, trained concurrently, tracked in a fresh local SQLite store, registered."""
    output_dir = tmp_path_factory.mktemp("tracked")
    config = from_dict(
        TrainConfig,
        {
            "model": {"kind": "layer-energy-flow", "kwargs": {"transforms": 1, "hidden_features": [8]}},
            "data": {"geometry": "ecal-hcal", "validation_fraction": 0.25},
            "optimizer": {"lr": 1e-3},
            "epochs": 2,
            "batch_size": 40,
            "seed": 11,
            "ensemble": {"members": 2},
            "output_dir": str(output_dir),
            "tracking": {"experiment": "caloray-test", "registry_name": REGISTRY_NAME},
        },
    )
    dataset = ray_local.data.from_items(_rows(200, 3), override_num_blocks=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return train_ensemble(config, dataset)
