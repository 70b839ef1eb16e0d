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


def remove_layer_noise(
    noisy_layer_mev: Tensor, voxels_per_layer: Tensor, noise_kev: float, threshold_mev: float = 0.0
) -> Tensor:
    """Invert `add_uniform_noise` on layer energies: dequantized (B, L) MeV → readout layer energies (B, L) MeV.

    The noise summed over a layer's n_l voxels (`voxels_per_layer`, (L,)) has mean n_l·ε/2 and support
    [0, n_l·ε] (ε = `noise_kev`). The readout energy is the noisy one minus that mean, and exactly 0 where it
    falls below c_l = max(T, n_l·ε/2) with T = `threshold_mev` the per-cell readout threshold: below T no cell
    of the layer can have been read out (a non-zero layer holds a cell ≥ T), and below n_l·ε/2 the noisy value
    lies inside the support of the noise alone, so the layer is indistinguishable from an empty one. For exact
    dequantized data this gives back every empty layer (the noise sum deviates from its mean by ≤ n_l·ε/2) and
    every non-zero one of energy ≥ c_l + (noise sum − mean), i.e. all but those within a few √(n_l/12)·ε of c_l.
    """
    mean_noise = 0.5 * noise_kev * KEV_IN_MEV * voxels_per_layer.to(noisy_layer_mev)
    energies = noisy_layer_mev - mean_noise
    cut = torch.clamp_min(mean_noise, threshold_mev)
    return torch.where(energies < cut, torch.zeros_like(energies), energies)


def incident_1d(incident_energies_mev: Tensor) -> Tensor:
    """Incident energies as (B,): accepts (B,) or the CaloChallenge file layout (B, 1)."""
    if incident_energies_mev.dim() == 2 and incident_energies_mev.shape[1] == 1:
        return incident_energies_mev[:, 0]
    if incident_energies_mev.dim() != 1:
        raise ValueError(f"incident energies must have shape (B,) or (B, 1), got {tuple(incident_energies_mev.shape)}")
    return incident_energies_mev
