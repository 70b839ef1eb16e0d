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


def test_elbo_training_reaches_the_conjugate_gaussian_posterior():
    """y = A w + ε, ε ~ N(0, s²), prior w ~ N(0, σ_p²): the mean-field optimum of mean NLL + KL / N (the BINN's
    loss convention) is known in closed form, means = the exact posterior mean Λ⁻¹ Aᵀy / s² and variances
    1 / Λ_ii with Λ = AᵀA / s² + 1 / σ_p² (A: inputs and the constant column of the bias)."""
    torch.manual_seed(0)
    n, noise, prior_std = 400, 0.5, 1.0
    x = torch.randn(n, 2, dtype=torch.float64)
    y = x @ torch.tensor([0.8, -0.3], dtype=torch.float64) + 0.2 + noise * torch.randn(n, dtype=torch.float64)
    design = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1)
    precision = design.T @ design / noise**2 + torch.eye(3, dtype=torch.float64) / prior_std**2
    exact_mean = torch.linalg.solve(precision, design.T @ y / noise**2)
    exact_var = 1.0 / precision.diagonal()

    layer = BayesianLinear(2, 1, prior_std=prior_std, init_log_var=-4.0).double()
    layer.train()
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [700, 1100], gamma=0.2)
    means, log_vars = [], []
    for step in range(1500):
        optimizer.zero_grad()
        nll = 0.5 * ((y - layer(x)[:, 0]) / noise) ** 2
        loss = nll.mean() + layer.kl() / n
        loss.backward()
        optimizer.step()
        schedule.step()
        if step >= 1100:  # average the last iterates: the gradient is stochastic (one weight draw per row)
            means.append(torch.cat([layer.weight_mean[0], layer.bias_mean]).detach())
            log_vars.append(torch.cat([layer.weight_log_var[0], layer.bias_log_var]).detach())
    mean, variance = torch.stack(means).mean(0), torch.stack(log_vars).mean(0).exp()
    torch.testing.assert_close(mean, exact_mean, atol=0.2 * float(exact_var.sqrt().min()), rtol=0)
    torch.testing.assert_close(variance, exact_var, rtol=0.1, atol=0)
    # and not the prior or a collapsed posterior: the data shrink the variance by orders of magnitude
    assert torch.all(variance < 0.01 * prior_std**2)


def test_band_of_an_exact_model_covers_at_the_prediction_interval_rate():
    """Draws and reference from the same density, each n showers: (ref − band mean) / (band std · √(1 + 1/K)) is
    Student-t with K − 1 degrees of freedom, so mean ± std covers a bin with probability
    2 F_t(1 / √(1 + 1/K)) − 1 (0.63 for K = 10); adding the reference's own error covers more."""
    rng = np.random.default_rng(3)
    n, draws, repetitions = 20_000, 10, 60
    edges = np.linspace(-2.0, 2.0, 21)
    expected = 2.0 * stats.t.cdf(1.0 / np.sqrt(1.0 + 1.0 / draws), draws - 1) - 1.0
    alone, combined = [], []
    for _ in range(repetitions):
        band = histogram_band([rng.normal(size=n) for _ in range(draws)], edges, per_shower=True)
        reference = rng.normal(size=n)
        counts = np.histogram(reference, bins=edges)[0]
        density, error = counts / (n * np.diff(edges)), np.sqrt(counts) / (n * np.diff(edges))
        alone.append(band_coverage(band, density))
        combined.append(band_coverage(band, density, reference_std=error))
    n_bins = repetitions * (len(edges) - 1)
    assert abs(np.mean(alone) - expected) < 3.5 * np.sqrt(expected * (1 - expected) / n_bins)
    assert np.mean(combined) > max(0.68, np.mean(alone) + 0.1)


def test_per_shower_band_counts_the_showers_outside_the_edges():
    edges = np.linspace(0.0, 1.0, 5)
    inside_and_out = [np.array([0.1, 0.4, 0.6, 0.9, 5.0, 7.0, -3.0, 2.0])]
    per_shower = histogram_band(inside_and_out, edges, per_shower=True)
    np.testing.assert_allclose(per_shower["mean"], [0.5, 0.5, 0.5, 0.5])  # 1 of 8 showers per bin of width 1/4
    np.testing.assert_allclose(histogram_band(inside_and_out, edges)["mean"], [1.0, 1.0, 1.0, 1.0])
