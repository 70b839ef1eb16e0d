"""Test data for the generation tests: a one-cell-per-layer geometry, simulated layer sums, a tiny trained flow.

The geometry has the six ECAL+HCAL layers with one voxel each, so a LayerEnergyFlow with voxel_layer 0…5
generates complete showers of it (its layer energies are the voxels) and trains in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from caloray.geometry import CylindricalLayer, Geometry, get_geometry, write_binning_xml
from caloray.io import write_showers
from caloray.models import LayerEnergyFlow, save_model
from caloray.sim import SimConfig, simulate_batch

N_LAYERS = 6
GEOMETRY_NAME = "ecal-hcal-layers"


@dataclass(frozen=True)
class World:
    root: Path
    geometry_xml: Path
    train_file: Path
    model_path: Path


def layer_geometry() -> Geometry:
    """Six layers of one cell each (r 0–1000 mm, one α bin)."""
    layers = tuple(CylindricalLayer(i, (0.0, 1000.0), 1) for i in range(N_LAYERS))
    return Geometry(GEOMETRY_NAME, "cylindrical", "pion", 211, layers)


def layer_showers(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(incident energies (n,) MeV, ECAL+HCAL pion layer energies (n, 6) float32 MeV), log-uniform 1–100 GeV."""
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="log-uniform", energy_min_mev=1e3,
                       energy_max_mev=1e5, n_showers=n, seed=seed)
    energies, showers = simulate_batch(config, np.random.default_rng(seed), n)
    geometry = get_geometry("ecal-hcal")
    layers = np.zeros((n, N_LAYERS))
    np.add.at(layers.T, geometry.voxel_layer, np.asarray(showers, dtype=np.float64).T)
    return np.asarray(energies, dtype=np.float32), layers.astype(np.float32)


def train_flow(energies: np.ndarray, showers: np.ndarray, steps: int = 150) -> LayerEnergyFlow:
    """A small Flow-I with one voxel per layer, fitted for `steps` Adam steps (≈ 2 s). It knows the simulated
    data's readout threshold (the ECAL+HCAL's, per cell: a layer's sum is 0 or above it), so its samples read
    empty layers as 0 like the data."""
    torch.manual_seed(0)
    threshold = SimConfig(geometry="ecal-hcal").resolved_threshold_mev
    flow = LayerEnergyFlow(list(range(N_LAYERS)), transforms=2, hidden_features=(16, 16),
                           readout_threshold_mev=threshold)
    x, e = torch.as_tensor(showers), torch.as_tensor(energies)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        rows = torch.randint(0, len(x), (256,), generator=generator)
        loss = flow.loss({"showers": x[rows], "incident_energies": e[rows]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return flow.eval()


def build_world(root: Path, n_train: int = 2000) -> World:
    """Geometry XML, a training file, and the trained flow saved with a train-config.yaml naming its data."""
    root.mkdir(parents=True, exist_ok=True)
    xml = root / f"{GEOMETRY_NAME}.xml"
    write_binning_xml(layer_geometry(), xml)
    energies, showers = layer_showers(n_train, seed=1)
    train_file = write_showers(root / "train" / "showers-00000.h5", showers, energies, geometry=GEOMETRY_NAME)
    model_path = save_model(train_flow(energies, showers), root / "model" / "flow.pt")
    config = {"model": {"kind": "layer-energy-flow"}, "data": {"paths": [str(train_file.parent)]}}
    (root / "model" / "train-config.yaml").write_text(yaml.safe_dump(config))
    return World(root, xml, train_file, model_path)
