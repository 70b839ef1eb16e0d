"""Toy showers shared by the model tests."""

from __future__ import annotations

import torch

#: A small 3-layer geometry: 3 + 4 + 5 voxels.
TOY_VOXEL_LAYER = [0] * 3 + [1] * 4 + [2] * 5


def make_toy_batch(
    n: int, voxel_layer: list[int] = TOY_VOXEL_LAYER, seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    """Sparse toy showers: E_inc log-uniform in [1, 100] GeV, voxel energies ∝ E_inc with ~40% zeros."""
    generator = torch.Generator().manual_seed(seed)
    incident = 10.0 ** (3.0 + 2.0 * torch.rand(n, generator=generator, dtype=torch.float64))
    shape = torch.linspace(1.0, 0.2, len(voxel_layer), dtype=torch.float64)
    raw = torch.rand(n, len(voxel_layer), generator=generator, dtype=torch.float64) * shape
    raw = torch.where(raw < 0.4 * shape, torch.zeros_like(raw), raw)
    showers = raw / raw.sum(-1, keepdim=True).clamp_min(1e-9) * 0.8 * incident[:, None]
    return {"showers": showers.to(dtype), "incident_energies": incident.to(dtype)}
