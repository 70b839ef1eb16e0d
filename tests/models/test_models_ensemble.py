"""Ensembles: equal sampling shares, mean-of-likelihoods log_prob, mean predictions."""

from __future__ import annotations

import math

import pytest
import torch

from caloray.models import EnergyRegressor, Ensemble, LayerEnergyFlow, ShowerVAE, VoxelFlow, build


def flow_ensemble(voxel_layer: list[int], k: int = 3) -> Ensemble:
    torch.manual_seed(0)
    return build(
        "ensemble",
        {
            "member_kind": "layer-energy-flow",
            "member_configs": [{"voxel_layer": voxel_layer, "transforms": 2, "hidden_features": [16, 16]}] * k,
        },
    )


def test_members_are_independently_initialized(toy_voxel_layer):
    ensemble = flow_ensemble(toy_voxel_layer)
    first, second = (dict(m.named_parameters()) for m in ensemble.members[:2])
    assert any(not torch.equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize(("n_rows", "expected"), [(10, [4, 3, 3]), (9, [3, 3, 3]), (2, [1, 1, 0]), (11, [4, 4, 3])])
def test_sampling_shares(n_rows, expected, toy_voxel_layer):
    ensemble = flow_ensemble(toy_voxel_layer)
    assignment = ensemble.member_assignment(n_rows)
    assert torch.bincount(assignment, minlength=3).tolist() == expected
    assert torch.equal(assignment, torch.arange(n_rows) % 3)  # deterministic round robin
    assert ensemble.sample(torch.full((n_rows,), 1e4))["layer_energies"].shape == (n_rows, 3)


def test_each_row_comes_from_its_assigned_member(toy_voxel_layer):
    ensemble = flow_ensemble(toy_voxel_layer)
    incident = torch.logspace(3, 5, 10)
    torch.manual_seed(42)
    combined = ensemble.sample(incident)
    torch.manual_seed(42)  # replay: member k samples its rows in member order
    for k, member in enumerate(ensemble.members):
        rows = torch.arange(10)[torch.arange(10) % 3 == k]
        part = member.sample(incident[rows])
        assert torch.equal(combined["layer_energies"][rows], part["layer_energies"])
        assert torch.equal(combined["incident_energies"][rows], incident[rows])


def test_log_prob_is_log_of_mean_likelihood(toy_batch, toy_voxel_layer):
    ensemble = flow_ensemble(toy_voxel_layer).double()
    batch = {key: value.double() for key, value in toy_batch.items()}
    members = torch.stack([member.log_prob(batch) for member in ensemble.members])
    by_hand = torch.log(members.exp().mean(0))
    assert torch.allclose(ensemble.log_prob(batch), by_hand, rtol=1e-12, atol=1e-12)
    assert torch.allclose(ensemble.log_prob(batch), torch.logsumexp(members, 0) - math.log(3), rtol=0, atol=0)
    # and it is not the mean of the log-likelihoods (Jensen: strictly larger when members differ)
    assert (ensemble.log_prob(batch) > members.mean(0) + 1e-6).all()
    # keyword arguments reach the members
    physical = ensemble.log_prob(batch, physical_units=True)
    members_physical = torch.stack([m.log_prob(batch, physical_units=True) for m in ensemble.members])
    assert torch.allclose(physical, torch.logsumexp(members_physical, 0) - math.log(3))


def test_log_prob_features_for_many_candidates(toy_batch, toy_voxel_layer):
    ensemble = flow_ensemble(toy_voxel_layer).double()
    layer_energies = ensemble.members[0].layer_energies(toy_batch["showers"].double())
    candidates = torch.logspace(3, 5, 5, dtype=torch.float64).expand(64, 5)
    out = ensemble.log_prob_features(layer_energies, candidates)
    members = torch.stack([m.log_prob_features(layer_energies, candidates) for m in ensemble.members])
    assert out.shape == (64, 5)
    assert torch.allclose(out, torch.logsumexp(members, 0) - math.log(3))


def test_regressor_ensemble_predicts_member_mean(toy_batch, toy_voxel_layer):
    torch.manual_seed(0)
    members = [EnergyRegressor(toy_voxel_layer, hidden_features=(16, 16)) for _ in range(4)]
    ensemble = Ensemble.from_members(members)
    expected = torch.stack([m.predict(toy_batch) for m in members]).mean(0)
    assert torch.allclose(ensemble.predict(toy_batch), expected)
    with pytest.raises(NotImplementedError):
        ensemble.log_prob(toy_batch)


def test_loss_gives_each_member_its_own_gradient(toy_batch, toy_voxel_layer):
    ensemble = flow_ensemble(toy_voxel_layer, k=2)
    ensemble.loss(toy_batch, add_noise=False).backward()
    reference = LayerEnergyFlow(**ensemble.members[1].config())
    reference.load_state_dict(ensemble.members[1].state_dict())
    reference.loss(toy_batch, add_noise=False).backward()
    for (name, p), q in zip(ensemble.members[1].named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name


def test_voxel_flow_ensemble_splits_layer_energies(toy_voxel_layer):
    torch.manual_seed(0)
    ensemble = Ensemble.from_members([VoxelFlow(toy_voxel_layer, transforms=1, hidden_features=(8,))] * 2)
    layer_energies = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [5.0, 0.0, 7.0]])
    showers = ensemble.sample(torch.full((3,), 1e4), layer_energies=layer_energies)["showers"]
    sums = torch.zeros(3, 3).index_add(1, torch.tensor(toy_voxel_layer), showers)
    assert torch.allclose(sums, layer_energies, rtol=1e-5, atol=1e-5)


def test_rejects_mixed_kinds_and_nesting(toy_voxel_layer):
    with pytest.raises(ValueError, match="one kind"):
        Ensemble.from_members([LayerEnergyFlow(toy_voxel_layer), ShowerVAE(toy_voxel_layer, hidden_features=(8,))])
    with pytest.raises(ValueError, match="ensembles"):
        Ensemble("ensemble", [{}])
