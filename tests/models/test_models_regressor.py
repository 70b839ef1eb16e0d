"""EnergyRegressor: the direct-regression baseline learns a simple calibration."""

from __future__ import annotations

import json

import pytest
import torch

from caloray.models import EnergyRegressor


@pytest.mark.parametrize("target", ["linear", "log10"])
def test_learns_energy_from_layer_energies(target):
    """Layer energies = fixed fractions of E_inc with 5% smearing: predictions within ~5% after training."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = EnergyRegressor([0, 1, 2], hidden_features=(64, 64), target=target)
    assert model.config()["target"] == target and json.dumps(model.config())
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def draw(n: int) -> dict[str, torch.Tensor]:
        incident = 1e3 + 9e4 * torch.rand(n, generator=generator)
        smear = 1 + 0.05 * torch.randn(n, 3, generator=generator)
        showers = incident[:, None] * torch.tensor([0.2, 0.5, 0.2]) * smear.clamp_min(0.1)
        return {"showers": showers, "incident_energies": incident}

    for _ in range(1000):
        loss = model.loss(draw(256))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test = draw(2000)
    with torch.no_grad():
        ratio = model.predict(test) / test["incident_energies"]
    assert ratio.shape == (2000,)
    assert float(ratio.median()) == pytest.approx(1.0, abs=0.05)
    assert float((ratio - 1).abs().median()) < 0.05


def test_accepts_layer_energies_directly_and_has_no_likelihood(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    model = EnergyRegressor(toy_voxel_layer)
    layer_energies = torch.zeros(64, 3).index_add(1, torch.tensor(toy_voxel_layer), toy_batch["showers"])
    direct = model.predict({"layer_energies": layer_energies, "incident_energies": toy_batch["incident_energies"]})
    assert torch.allclose(direct, model.predict(toy_batch))
    assert sum(p.numel() for p in model.parameters()) == 3 * 256 + 256 + 256 * 256 + 256 + 256 + 1
    with pytest.raises(NotImplementedError):
        model.log_prob(toy_batch)
    with pytest.raises(NotImplementedError):
        model.sample(toy_batch["incident_energies"])
