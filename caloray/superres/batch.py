"""Batch entry points for pipelines: coarse-grain reference showers and upsample them (torch and numpy)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from caloray.models.features import incident_1d
from caloray.superres.coarse import coarse_energies, fine_layer_energies
from caloray.superres.model import SuperResolutionFlow


@torch.no_grad()
def upsample_reference(model: SuperResolutionFlow, showers: Tensor, incident_energies: Tensor) -> Tensor:
    """Coarse-grain fine showers (B, n_voxels) MeV and upsample them again → (B, n_voxels) MeV.

    The oracle variant takes the fine-layer energies of the same showers (the thesis' evaluation setup).
    """
    showers = showers.to(model.dtype)
    layers = fine_layer_energies(showers, model.grid) if model.oracle else None
    return model.upsample(coarse_energies(showers, model.grid), incident_1d(incident_energies), layers)


def upsample_numpy(model: SuperResolutionFlow, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data `map_batches` body: {"showers" (B, V), "incident_energies" (B,) or (B, 1)} MeV of reference
    fine showers → {"showers": upsampled (B, V) float32, "incident_energies": (B,) float32, MeV}."""
    device = next(model.parameters()).device
    showers = torch.as_tensor(np.asarray(batch["showers"]), device=device)
    incident = torch.as_tensor(np.asarray(batch["incident_energies"]), device=device)
    fine = upsample_reference(model, showers, incident)
    return {
        "showers": fine.cpu().numpy().astype(np.float32),
        "incident_energies": incident_1d(incident).cpu().numpy().astype(np.float32),
    }
