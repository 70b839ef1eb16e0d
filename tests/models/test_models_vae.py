"""ShowerVAE: preprocessing round trip, training on a toy set, exact zeros (Bernoulli), ds2 shapes."""

from __future__ import annotations

import json

import pytest
import torch
from models_toy_data import make_toy_batch

from caloray.models import ShowerVAE
from caloray.models.features import layer_sums

DS2_VOXEL_LAYER = [i // 144 for i in range(6480)]  # 45 layers × 16 α × 9 r


@pytest.mark.parametrize("variant", ["gaussian", "bernoulli"])
def test_config_round_trip(variant, toy_voxel_layer):
    model = ShowerVAE(toy_voxel_layer, variant=variant, hidden_features=(32,), latent_dim=4)
    config = json.loads(json.dumps(model.config()))
    assert ShowerVAE(**config).config() == config


def test_rejects_unknown_variant(toy_voxel_layer):
    with pytest.raises(ValueError, match="variant"):
        ShowerVAE(toy_voxel_layer, variant="poisson")


def test_preprocessing_inverts(toy_voxel_layer):
    """postprocess(preprocess(x)) = x for physical showers (Σ E ≤ energy_scale · E_inc), fitted or not."""
    batch = make_toy_batch(32, dtype=torch.float64)
    model = ShowerVAE(toy_voxel_layer, hidden_features=(32,), latent_dim=4).double()
    for _ in range(2):
        h = model.preprocess(batch["showers"], batch["incident_energies"])
        back = model.postprocess(h, batch["incident_energies"], hits=batch["showers"] > 0)
        assert torch.allclose(back, batch["showers"], rtol=1e-6, atol=1e-6)
        model.fit_standardization(batch["showers"], batch["incident_energies"])
        assert bool(model.standardization_fitted)


@pytest.mark.parametrize("variant", ["gaussian", "bernoulli"])
def test_loss_decreases_on_toy_data(variant, toy_voxel_layer):
    torch.manual_seed(0)
    batch = make_toy_batch(256, seed=5)
    model = ShowerVAE(toy_voxel_layer, variant=variant, hidden_features=(64, 32), latent_dim=4, beta=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(150):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert bool(model.standardization_fitted)  # auto-standardized on the first training batch
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10


def test_bernoulli_samples_have_exact_zeros_and_respect_layer_energies(toy_voxel_layer):
    torch.manual_seed(0)
    model = ShowerVAE(toy_voxel_layer, variant="bernoulli", hidden_features=(32,), latent_dim=4)
    incident = torch.full((200,), 3e4)
    showers = model.sample(incident)["showers"]
    assert showers.shape == (200, 12) and (showers >= 0).all()
    assert (showers == 0).sum() > 0  # untrained hit probabilities ≈ 1/2: many exact zeros
    assert (showers > 0).sum() > 0
    total = showers.sum(-1)
    assert (total <= 2.0 * incident * (1 + 1e-5)).all()  # u_0 ∈ [0, 1] ⇒ E_tot ≤ energy_scale · E_inc


def test_gaussian_samples_are_finite_and_non_negative(toy_voxel_layer):
    torch.manual_seed(0)
    model = ShowerVAE(toy_voxel_layer, variant="gaussian", hidden_features=(32,), latent_dim=4)
    showers = model.sample(torch.logspace(3, 5, 50))["showers"]
    assert showers.shape == (50, 12) and torch.isfinite(showers).all() and (showers >= 0).all()


@pytest.mark.parametrize("variant", ["gaussian", "bernoulli"])
def test_ds2_shapes(variant):
    torch.manual_seed(0)
    model = ShowerVAE(DS2_VOXEL_LAYER, variant=variant, hidden_features=(128,), latent_dim=16)
    generator = torch.Generator().manual_seed(0)
    showers = torch.rand(4, 6480, generator=generator) * 5.0
    showers[showers < 4.0] = 0.0
    batch = {"showers": showers, "incident_energies": torch.full((4, 1), 5e4)}  # (B, 1) accepted
    assert torch.isfinite(model.loss(batch))
    mean, log_var = model.encode(batch)
    assert mean.shape == log_var.shape == (4, 16)
    assert model.reconstruct(batch).shape == (4, 6480)
    sample = model.sample(torch.full((3,), 5e4))["showers"]
    assert sample.shape == (3, 6480)
    assert layer_sums(sample, model.voxel_layer, 45).shape == (3, 45)


def test_standardization_leaves_near_constant_features_unscaled(toy_voxel_layer):
    """A voxel never hit in the fitting sample is only centred, so its first hit later stays a modest value
    (a 1e-3 std floor made it a ~1e4σ outlier and the loss inf/NaN)."""
    from caloray.models.vae import MIN_FEATURE_STD

    batch = make_toy_batch(64, seed=2)
    batch["showers"][:, 0] = 0.0  # voxel 0 never hit in the fitting sample
    model = ShowerVAE(toy_voxel_layer, hidden_features=(16,), latent_dim=4)
    model.fit_standardization(batch["showers"], batch["incident_energies"])
    features = model._logit_features(batch["showers"], batch["incident_energies"])
    varying = features.std(0) >= MIN_FEATURE_STD
    assert model.feature_std[0] == 1.0 and bool(varying[1:].any())
    torch.testing.assert_close(model.feature_std[varying], features.std(0)[varying])
    later = make_toy_batch(64, seed=3)  # voxel 0 hit here
    assert bool((later["showers"][:, 0] > 0).any())
    h = model.preprocess(later["showers"], later["incident_energies"])
    assert float(h[:, 0].abs().max()) < 30.0  # within the α = 1e-6 logit range, not 1e4
    assert torch.isfinite(model.loss(later))
