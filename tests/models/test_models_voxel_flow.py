"""VoxelFlow (CaloFlow Flow-II role) and the chained Flow-I → Flow-II sampler."""

from __future__ import annotations

import json

import pytest
import torch
from models_toy_data import make_toy_batch

from caloray.models import Ensemble, LayerEnergyFlow, VoxelFlow, sample_showers
from caloray.models.features import layer_sums

#: CaloChallenge ds1 photons: 8×1, 16×10, 19×10, 5×1, 5×1 voxels in 5 layers.
DS1_PHOTON_VOXEL_LAYER = [0] * 8 + [1] * 160 + [2] * 190 + [3] * 5 + [4] * 5


def small_voxel_flow(voxel_layer: list[int]) -> VoxelFlow:
    return VoxelFlow(voxel_layer, transforms=2, hidden_features=(32,))


def test_config_and_defaults(toy_voxel_layer):
    model = VoxelFlow(toy_voxel_layer)
    config = json.loads(json.dumps(model.config()))
    assert config["bound"] == 14.0 and config["alpha"] == 1e-6 and config["bins"] == 8
    assert all(t.univariate.keywords["bound"] == 14.0 for t in model.flow.transform.transforms)
    assert VoxelFlow(**config).config() == config


def test_features_are_logit_of_layer_fractions(toy_batch, toy_voxel_layer):
    model = small_voxel_flow(toy_voxel_layer).double()
    showers = toy_batch["showers"].double()
    features, layer_energies = model.features(showers)
    fractions = model.logit.inverse(features)
    sums = layer_sums(fractions, model.voxel_layer, model.n_layers)
    assert torch.allclose(sums[layer_energies > 0], torch.ones_like(sums[layer_energies > 0]), atol=1e-9)
    assert torch.allclose(model.normalization.inverse(fractions, layer_energies), showers, atol=1e-6)


def test_ds1_sized_log_prob_and_sample():
    torch.manual_seed(0)
    model = small_voxel_flow(DS1_PHOTON_VOXEL_LAYER)
    generator = torch.Generator().manual_seed(1)
    showers = torch.rand(4, 368, generator=generator) * 10
    incident = torch.full((4,), 2e4)
    batch = {"showers": showers, "incident_energies": incident}
    assert model.log_prob(batch).shape == (4,)
    assert torch.isfinite(model.loss(batch))
    layer_energies = torch.tensor([[10.0, 500.0, 800.0, 30.0, 0.0]]).expand(4, 5)
    out = model.sample(incident, layer_energies=layer_energies)["showers"]
    assert out.shape == (4, 368) and (out >= 0).all()
    assert torch.allclose(layer_sums(out, model.voxel_layer, 5), layer_energies, rtol=1e-5, atol=1e-5)


def test_sample_needs_layer_energies(toy_voxel_layer):
    with pytest.raises(ValueError, match="layer_energies"):
        small_voxel_flow(toy_voxel_layer).sample(torch.full((2,), 1e4))


def test_fraction_density_adds_logit_jacobian(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    model = small_voxel_flow(toy_voxel_layer).double()
    batch = {key: value.double() for key, value in toy_batch.items()}
    features, _ = model.features(batch["showers"])
    jacobian = model.logit.log_abs_det_jacobian(model.logit.inverse(features)).sum(-1)
    assert torch.allclose(model.log_prob(batch, fraction_density=True), model.log_prob(batch) + jacobian)


def test_chained_sampler_conserves_flow_one_layer_energies(toy_voxel_layer):
    torch.manual_seed(0)
    layer_flow = LayerEnergyFlow(toy_voxel_layer, transforms=2, hidden_features=(16, 16))
    voxel_flow = small_voxel_flow(toy_voxel_layer)
    incident = torch.logspace(3, 5, 10)
    out = sample_showers(layer_flow, voxel_flow, incident)
    assert out["showers"].shape == (10, 12) and out["layer_energies"].shape == (10, 3)
    sums = layer_sums(out["showers"], voxel_flow.voxel_layer, 3)
    assert torch.allclose(sums, out["layer_energies"], rtol=1e-4, atol=1e-4)
    # ensembles of both stages chain the same way
    layer_ensemble = Ensemble.from_members([layer_flow, layer_flow])
    voxel_ensemble = Ensemble.from_members([voxel_flow, voxel_flow, voxel_flow])
    assert sample_showers(layer_ensemble, voxel_ensemble, incident)["showers"].shape == (10, 12)


def test_chained_sampler_rejects_mismatched_geometries(toy_voxel_layer):
    layer_flow = LayerEnergyFlow([0, 1, 2], transforms=1, hidden_features=(8,))
    with pytest.raises(ValueError, match="voxel_layer"):
        sample_showers(layer_flow, small_voxel_flow(toy_voxel_layer), torch.full((2,), 1e4))


def test_training_reduces_loss(toy_voxel_layer):
    torch.manual_seed(0)
    model = small_voxel_flow(toy_voxel_layer)
    batch = make_toy_batch(512, seed=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = model.loss(batch, add_noise=False).item()
    for _ in range(60):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.loss(batch, add_noise=False).item() < before - 1.0
