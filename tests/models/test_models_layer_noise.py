"""Inverting Flow-I's dequantization (`remove_layer_noise`, `LayerEnergyFlow.sample`): layer energies drawn from
exactly the dequantized distribution the flow is trained on come back with the data's empty layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor

from caloray.geometry import get_geometry
from caloray.models import LayerEnergyFlow
from caloray.models.features import remove_layer_noise
from caloray.sim import SimConfig, simulate_shard

NOISE_MEV = 1e-4  # the paper's 0.1 keV per voxel


@pytest.fixture(scope="module")
def ecal_hcal_reference() -> tuple[Tensor, Tensor]:
    """4000 simulated ECAL+HCAL pions (log-uniform 1–100 GeV, the demo's prior): E_inc (N,), showers (N, 1008)."""
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="log-uniform", energy_min_mev=1e3,
                       energy_max_mev=1e5, n_showers=4000, shard_size=4000, seed=77)
    energies, showers = simulate_shard(config, 0)
    return torch.as_tensor(energies), torch.as_tensor(showers, dtype=torch.float64)


class ReplayFlow(torch.nn.Module):
    """A stand-in for Flow-I's conditional flow whose `sample()` returns given preprocessed rows: a perfect
    Flow-I that draws exactly the dequantized training distribution."""

    def __init__(self, y: Tensor) -> None:
        super().__init__()
        self.y = y

    def forward(self, context: Tensor) -> ReplayFlow:
        assert context.shape == (self.y.shape[0], 1)
        return self

    def sample(self) -> Tensor:
        return self.y


def _binomial_sigma(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1.0 / n) / n)


def test_perfect_flow_gives_back_the_reference_empty_layers(ecal_hcal_reference):
    incident, showers = ecal_hcal_reference
    geometry = get_geometry("ecal-hcal")
    threshold = float(geometry.attributes["readout_threshold_mev"])
    model = LayerEnergyFlow(geometry.voxel_layer.tolist(), transforms=1, hidden_features=(8,),
                            readout_threshold_mev=threshold).double()
    truth = model.layer_energies(showers)
    # the same (independent) dequantization draw the flow is trained on, then the flow's feature transform
    noisy = model.layer_energies(showers, add_noise=True, generator=torch.Generator().manual_seed(3))
    model.flow = ReplayFlow(model.layer_transform(noisy))
    sampled = model.sample(incident)["layer_energies"]
    raw = model.sample(incident, remove_noise=False)["layer_energies"]  # what sampling returned before
    n = len(incident)
    assert (truth[:, -1] == 0).float().mean() > 0.2  # the last HCAL layer is often empty: the case that matters
    for layer in range(model.n_layers):
        p_ref = float((truth[:, layer] == 0).double().mean())
        sigma = _binomial_sigma(p_ref, n)
        assert abs(float((sampled[:, layer] == 0).double().mean()) - p_ref) <= 2 * sigma
        if p_ref > 0.01:  # without the inverse no layer is ever empty: the test can fail
            assert abs(float((raw[:, layer] == 0).double().mean()) - p_ref) > 5 * sigma
    # a non-empty layer keeps its energy up to the noise's deviation from its mean (≤ n_l · 0.05 keV)
    both = (truth > 0) & (sampled > 0)
    bound = 0.5 * NOISE_MEV * model.voxels_per_layer.double()
    assert bool(((sampled - truth).abs() <= bound + 1e-12).where(both, True).all())
    # and what is read out non-zero is above the cell threshold, like the data
    assert float(sampled[sampled > 0].min()) >= threshold


def test_without_threshold_only_the_pure_noise_region_is_empty():
    """T = 0: a layer is empty exactly when its dequantized energy lies inside the noise's own support
    [0, n_l · ε]; energies above it lose only the noise's mean n_l · ε / 2."""
    voxels = torch.tensor([1, 10, 100])
    support = NOISE_MEV * voxels.double()
    noisy = torch.stack([0.999 * support, 1.001 * support, support + 5.0, torch.zeros(3)])
    got = remove_layer_noise(noisy, voxels, noise_kev=0.1)
    expected = torch.stack([torch.zeros(3), 1.001 * support - support / 2, 5.0 + support / 2, torch.zeros(3)])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    # with a threshold T above n_l · ε / 2, the cut moves to T (after removing the mean)
    threshold = 0.01515
    at_cut = threshold + support / 2
    got = remove_layer_noise(torch.stack([at_cut * 0.999, at_cut * 1.001]), voxels, 0.1, threshold)
    assert (got[0] == 0).all() and (got[1] >= threshold).all()


def test_sample_and_sample_from_noise_return_readout_energies(toy_voxel_layer):
    torch.manual_seed(0)
    model = LayerEnergyFlow(toy_voxel_layer, transforms=1, hidden_features=(8,), readout_threshold_mev=5.0)
    incident = torch.full((500,), 1e4)
    torch.manual_seed(1)
    raw = model.sample(incident, remove_noise=False)["layer_energies"]
    torch.manual_seed(1)
    sampled = model.sample(incident)["layer_energies"]
    torch.testing.assert_close(sampled, model.readout_energies(raw))
    assert (sampled == 0).any() and (sampled > 0).any()  # an untrained flow spreads over both regions
    noise = torch.randn(500, model.n_layers)
    from_noise = model.sample_from_noise(incident, noise)["layer_energies"]
    flow_y = model.flow(model.context(incident)).transform.inv(noise)
    torch.testing.assert_close(from_noise, model.readout_energies(model.layer_transform.inverse(flow_y)))
    assert LayerEnergyFlow(**model.config()).readout_threshold_mev == 5.0  # kept in the checkpoint config


def test_rejects_a_negative_threshold(toy_voxel_layer):
    with pytest.raises(ValueError, match="readout_threshold_mev"):
        LayerEnergyFlow(toy_voxel_layer, readout_threshold_mev=-1.0)


def test_layer_voxel_counts(toy_voxel_layer):
    model = LayerEnergyFlow(toy_voxel_layer, transforms=1, hidden_features=(8,))
    np.testing.assert_array_equal(model.voxels_per_layer.numpy(), np.bincount(toy_voxel_layer))
