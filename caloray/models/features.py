"""Geometry-aware feature maps shared by the models: layer sums and dequantization noise."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from caloray.models.transforms import KEV_IN_MEV


def check_voxel_layer(voxel_layer: Sequence[int]) -> list[int]:
    """Validate a voxel → layer map (values 0 … L−1, every layer used) and return it as a list of ints."""
    layers = [int(i) for i in voxel_layer]
    if not layers:
        raise ValueError("voxel_layer is empty")
    n_layers = max(layers) + 1
    if min(layers) < 0 or set(layers) != set(range(n_layers)):
        raise ValueError(f"voxel_layer must use every layer 0..{n_layers - 1} and nothing else")
    return layers


def layer_sums(showers_mev: Tensor, voxel_layer: Tensor, n_layers: int) -> Tensor:
    """Per-layer energy sums: showers (B, V) MeV, voxel_layer (V,) long → (B, L) MeV."""
    out = showers_mev.new_zeros(showers_mev.shape[0], n_layers)
    return out.index_add(1, voxel_layer, showers_mev)


def add_uniform_noise(showers_mev: Tensor, noise_kev: float, generator: torch.Generator | None = None) -> Tensor:
    """Add independent uniform noise in [0, noise_kev] keV to every voxel (B, V) MeV → (B, V) MeV."""
    if noise_kev <= 0:
        return showers_mev
    noise = torch.rand(showers_mev.shape, generator=generator, dtype=showers_mev.dtype, device=showers_mev.device)
    return showers_mev + noise * (noise_kev * KEV_IN_MEV)


def incident_1d(incident_energies_mev: Tensor) -> Tensor:
    """Incident energies as (B,): accepts (B,) or the CaloChallenge file layout (B, 1)."""
    if incident_energies_mev.dim() == 2 and incident_energies_mev.shape[1] == 1:
        return incident_energies_mev[:, 0]
    if incident_energies_mev.dim() != 1:
        raise ValueError(f"incident energies must have shape (B,) or (B, 1), got {tuple(incident_energies_mev.shape)}")
    return incident_energies_mev
