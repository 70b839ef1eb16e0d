"""LayerEnergyFlow (Flow-I) interface: shapes, settings, noise, batched candidate likelihoods."""

from __future__ import annotations

import json

import pytest
import torch

from caloray.models import LayerEnergyFlow


def test_paper_defaults_and_json_config(toy_voxel_layer):
    model = LayerEnergyFlow(toy_voxel_layer)
    config = json.loads(json.dumps(model.config()))
    assert config["transforms"] == 6 and config["hidden_features"] == [64, 64]
    assert config["bins"] == 8 and config["bound"] == 14.0 and config["noise_kev"] == 0.1
    assert len(model.flow.transform.transforms) == 6
    for transform in model.flow.transform.transforms:
        assert transform.univariate.keywords["bound"] == 14.0  # not zuko's default of 5
    assert LayerEnergyFlow(**config).config() == config


def test_splines_act_beyond_zukos_default_domain():
    """With bound 14 the transform is not the identity at |y| = 10 (it would be with zuko's bound 5)."""
    torch.manual_seed(0)
    model = LayerEnergyFlow([0], transforms=1, hidden_features=(8,))
    y = torch.tensor([[10.0], [-10.0]])
    transform = model.flow(model.context(torch.full((2,), 1e4))).transform
    assert not torch.allclose(transform(y), y)


def test_shapes(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    model = LayerEnergyFlow(toy_voxel_layer, transforms=2, hidden_features=(16, 16))
    assert model.log_prob(toy_batch).shape == (64,)
    assert model.loss(toy_batch).shape == ()
    sample = model.sample(toy_batch["incident_energies"])
    assert sample["layer_energies"].shape == (64, 3)
    assert (sample["layer_energies"] >= 0).all()
    # the CaloChallenge file layout (B, 1) for incident energies is accepted too
    as_column = {**toy_batch, "incident_energies": toy_batch["incident_energies"][:, None]}
    assert torch.equal(model.log_prob(as_column), model.log_prob(toy_batch))


def test_noise_is_uniform_per_voxel_and_on_by_default_in_loss(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    model = LayerEnergyFlow(toy_voxel_layer, transforms=2, hidden_features=(16, 16))
    clean = model.layer_energies(toy_batch["showers"].double())
    noisy = model.layer_energies(toy_batch["showers"].double(), add_noise=True)
    per_layer_voxels = torch.tensor([3.0, 4.0, 5.0], dtype=torch.float64)
    excess = noisy - clean
    assert (excess > 0).all() and (excess <= per_layer_voxels * 1e-4).all()  # 0.1 keV = 1e-4 MeV per voxel
    assert float(excess.mean(0).div(per_layer_voxels).mean()) == pytest.approx(0.5e-4, rel=0.1)
    # loss: noisy by default (differs between calls), deterministic without noise
    assert model.loss(toy_batch) != model.loss(toy_batch)
    assert model.loss(toy_batch, add_noise=False) == model.loss(toy_batch, add_noise=False)
    assert torch.equal(model.log_prob(toy_batch), model.log_prob(toy_batch))  # evaluation: no noise by default


def test_log_prob_features_equals_one_candidate_at_a_time(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    model = LayerEnergyFlow(toy_voxel_layer, transforms=2, hidden_features=(16, 16)).double()
    layer_energies = model.layer_energies(toy_batch["showers"].double())
    candidates = torch.logspace(3, 5, 7, dtype=torch.float64).expand(64, 7) * (1 + 0.1 * torch.rand(64, 1))
    batched = model.log_prob_features(layer_energies, candidates)
    assert batched.shape == (64, 7)
    for k in range(7):
        single = model.log_prob({"layer_energies": layer_energies, "incident_energies": candidates[:, k]})
        assert torch.allclose(batched[:, k], single, rtol=1e-12, atol=1e-12)
    assert model.log_prob_features(layer_energies, candidates[:, 0]).shape == (64,)


def test_physical_units_add_the_transform_jacobian(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    model = LayerEnergyFlow(toy_voxel_layer, transforms=2, hidden_features=(16, 16)).double()
    batch = {key: value.double() for key, value in toy_batch.items()}
    layer_energies = model.layer_energies(batch["showers"])
    jacobian = model.layer_transform.log_abs_det_jacobian(layer_energies).sum(-1)
    physical = model.log_prob(batch, physical_units=True)
    assert torch.allclose(physical, model.log_prob(batch) + jacobian, rtol=1e-12, atol=1e-12)


def test_rejects_bad_geometry():
    with pytest.raises(ValueError, match="every layer"):
        LayerEnergyFlow([0, 2, 2])
