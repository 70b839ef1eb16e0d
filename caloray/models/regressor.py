"""Direct-regression baseline: a DNN predicting E_inc from the layer energies (MSE)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.models.base import Batch, Surrogate
from caloray.models.features import add_uniform_noise, check_voxel_layer, incident_1d, layer_sums
from caloray.models.transforms import TEN_GEV_IN_MEV, incident_energy_transform, layer_energy_transform

TARGETS = ("linear", "log10")


class EnergyRegressor(Surrogate):
    """MLP (default 2×256, ReLU) trained with MSE to predict E_inc from the layer energies (spec §1).

    Inputs: the Flow-I preprocessing of the layer energies, 2·(log10(E_i/MeV + 1e-3) − 1), computed from
    the showers with the same per-voxel uniform noise in [0, `noise_kev`] keV (on by default in `loss`).
    Target (`target`): ``"linear"`` regresses E_inc / 10 GeV, so the MSE optimum is the posterior mean
    ⟨E_inc | x⟩ of the paper's Eq. 1–3 (prior dependent by construction); ``"log10"`` regresses
    log10(E_inc / 10 GeV). `predict` always returns MeV. No likelihood and no sampling.
    """

    kind = "energy-regressor"

    def __init__(
        self,
        voxel_layer: Sequence[int],
        hidden_features: Sequence[int] = (256, 256),
        target: str = "linear",
        noise_kev: float = 0.1,
    ) -> None:
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"EnergyRegressor target must be one of {TARGETS}, got {target!r}")
        self.voxel_layer_list = check_voxel_layer(voxel_layer)
        self.n_layers = max(self.voxel_layer_list) + 1
        self.n_voxels = len(self.voxel_layer_list)
        self.hidden_features = [int(h) for h in hidden_features]
        self.target = target
        self.noise_kev = float(noise_kev)
        self.register_buffer("voxel_layer", torch.tensor(self.voxel_layer_list, dtype=torch.long), False)
        self.layer_transform = layer_energy_transform()
        self.incident_transform = incident_energy_transform()
        sizes = [self.n_layers, *self.hidden_features, 1]
        layers: list[torch.nn.Module] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(torch.nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.network = torch.nn.Sequential(*layers)

    def config(self) -> dict[str, Any]:
        return {
            "voxel_layer": list(self.voxel_layer_list),
            "hidden_features": list(self.hidden_features),
            "target": self.target,
            "noise_kev": self.noise_kev,
        }

    def _inputs(self, batch: Batch, add_noise: bool) -> Tensor:
        if "layer_energies" in batch:
            layer_energies = batch["layer_energies"]
        else:
            showers = batch["showers"]
            if add_noise:
                showers = add_uniform_noise(showers, self.noise_kev)
            layer_energies = layer_sums(showers, self.voxel_layer, self.n_layers)
        return self.layer_transform(layer_energies)

    def _encode_target(self, incident_energies_mev: Tensor) -> Tensor:
        if self.target == "linear":
            return incident_energies_mev / TEN_GEV_IN_MEV
        return self.incident_transform(incident_energies_mev)

    def _decode_target(self, output: Tensor) -> Tensor:
        if self.target == "linear":
            return output * TEN_GEV_IN_MEV
        return self.incident_transform.inverse(output)

    def loss(self, batch: Batch, add_noise: bool = True) -> Tensor:
        """Mean squared error in target space (noise added to the voxels by default)."""
        output = self.network(self._inputs(batch, add_noise)).squeeze(-1)
        return torch.mean((output - self._encode_target(incident_1d(batch["incident_energies"]))) ** 2)

    def predict(self, batch: Batch, add_noise: bool = False) -> Tensor:
        """Predicted E_inc (B,) MeV from ``batch["layer_energies"]`` (B, L) MeV or ``batch["showers"]``."""
        return self._decode_target(self.network(self._inputs(batch, add_noise)).squeeze(-1))
