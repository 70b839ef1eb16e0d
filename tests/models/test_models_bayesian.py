"""Bayesian INN: the Bayesian layer's KL and sampling, fixed weight draws, ELBO, histogram bands."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from models_toy_data import make_toy_batch
from scipy import stats

from caloray.models import BayesianShowerINN
from caloray.models.bayesian import BayesianLinear, band_coverage, histogram_band, kl_divergence, weight_draw


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    layer = BayesianLinear(5, 3, prior_std=0.7, init_log_var=-3.0)
    with torch.no_grad():
        layer.weight_log_var.add_(torch.randn_like(layer.weight_log_var))
    expected = sum(
        torch.distributions.kl_divergence(
            torch.distributions.Normal(mean, (0.5 * log_var).exp()), torch.distributions.Normal(0.0, 0.7)
        ).sum()
        for mean, log_var in ((layer.weight_mean, layer.weight_log_var), (layer.bias_mean, layer.bias_log_var))
    )
    torch.testing.assert_close(layer.kl(), expected)
    torch.testing.assert_close(kl_divergence(torch.nn.Sequential(layer, copy.deepcopy(layer))), 2 * expected)


def test_local_reparameterization_has_the_weight_posterior_moments():
    """Training-mode outputs (one draw per row) and fixed draws (one per batch) share mean and variance."""
    torch.manual_seed(0)
    layer = BayesianLinear(4, 2, init_log_var=-1.0).double()
    x = torch.randn(1, 4, dtype=torch.float64)
    layer.train()
    rows = layer(x.expand(20000, 4))
    draws = []
    for seed in range(2000):
        with weight_draw(layer, seed):
            draws.append(layer(x))
    draws = torch.cat(draws)
    layer.eval()
    mean = layer(x)[0]
    variance = (x**2) @ layer.weight_log_var.exp().T + layer.bias_log_var.exp()
    torch.testing.assert_close(rows.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(rows.var(0), variance[0], rtol=0.05, atol=0)
    torch.testing.assert_close(draws.mean(0), mean, atol=0.06, rtol=0)
    torch.testing.assert_close(draws.var(0), variance[0], rtol=0.15, atol=0)


def _binn(voxel_layer) -> BayesianShowerINN:
    torch.manual_seed(0)
    return BayesianShowerINN(voxel_layer, blocks=2, hidden_features=[16], train_size=1000, init_log_var=-4.0)


def test_weight_draws_are_reproducible_and_differ(toy_voxel_layer):
    model = _binn(toy_voxel_layer)
    batch = make_toy_batch(64)
    model.fit_preprocessing(batch)
    model.eval()
    energies = batch["incident_energies"]

    def draw(seed: int) -> torch.Tensor:
        torch.manual_seed(11)  # same latent noise: only the weights change between draws
        return model.sample(energies, weight_draw_seed=seed)["showers"]

    assert torch.equal(draw(1), draw(1))
    assert not torch.allclose(draw(1), draw(2))
    assert torch.equal(model.log_prob(batch, weight_draw_seed=4), model.log_prob(batch, weight_draw_seed=4))
    assert not torch.equal(model.log_prob(batch, weight_draw_seed=4), model.log_prob(batch, weight_draw_seed=5))
    # eval without a draw: the posterior means, deterministic
    assert torch.equal(model.log_prob(batch), model.log_prob(batch))
    assert all(layer._draw is None for layer in model.flow.modules() if isinstance(layer, BayesianLinear))


def test_loss_is_nll_plus_kl_over_train_size(toy_voxel_layer):
    model = _binn(toy_voxel_layer)
    batch = make_toy_batch(64)
    model.fit_preprocessing(batch)
    model.train()
    torch.manual_seed(2)
    loss = model.loss(batch)
    torch.manual_seed(2)
    nll = super(BayesianShowerINN, model).loss(batch)
    torch.testing.assert_close(loss, nll + model.kl() / 1000)
    assert len([m for m in model.flow.modules() if isinstance(m, BayesianLinear)]) == model.blocks


def test_band_covers_a_known_density_and_misses_a_shifted_one():
    rng = np.random.default_rng(0)
    edges = np.linspace(-2.5, 2.5, 26)
    truth = np.diff(stats.norm.cdf(edges)) / np.diff(edges)
    draws = [rng.normal(0.0, 1.0, 4000) for _ in range(20)]
    band = histogram_band(draws, edges)
    assert band["histograms"].shape == (20, 25) and np.all(band["lo"] <= band["mean"])
    assert np.all(band["mean"] <= band["hi"])
    assert band_coverage(band, truth) >= 0.68
    assert band_coverage(band, truth, width="minmax") >= 0.9
    shifted = histogram_band([rng.normal(0.4, 1.0, 4000) for _ in range(20)], edges)
    assert band_coverage(shifted, truth) < 0.4
    with pytest.raises(ValueError, match="at least one"):
        histogram_band([], edges)
