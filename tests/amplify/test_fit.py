"""The 5-parameter maximum-likelihood fit benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.amplify.fit import fit_two_gaussians, mixture_nll
from caloray.amplify.truth import GaussianMixture, camel_back


def test_fit_recovers_parameters_on_a_large_sample():
    truth = GaussianMixture(weights=(0.3, 0.7), means=(-3.5, 4.2), sigmas=(0.8, 1.3))
    x = truth.sample(20_000, np.random.default_rng(5))
    fit = fit_two_gaussians(x)
    # tolerances ≈ 5 standard errors at this sample size
    assert fit.means == pytest.approx((-3.5, 4.2), abs=0.05)
    assert fit.sigmas == pytest.approx((0.8, 1.3), abs=0.05)
    assert fit.fraction == pytest.approx(0.3, abs=0.02)
    assert fit.model.low == -8 and fit.model.high == 8


def test_fit_is_a_maximum_and_orders_components():
    x = camel_back().sample(100, np.random.default_rng(8))
    fit = fit_two_gaussians(x)
    assert fit.means[0] < 0 < fit.means[1]
    best = np.array([*fit.means, *fit.sigmas, fit.fraction])
    assert fit.nll == pytest.approx(mixture_nll(best, x, -8, 8))
    rng = np.random.default_rng(0)
    for _ in range(20):  # small perturbations never improve the likelihood
        assert mixture_nll(best + rng.normal(0, 1e-3, 5), x, -8, 8) >= fit.nll - 1e-9


def test_truncated_likelihood_is_normalised():
    """exp(−NLL) integrates to one over [low, high] for the truncated model (single event x)."""
    params = np.array([-2.0, 7.5, 1.0, 2.0, 0.4])
    grid = np.linspace(-8, 8, 20_001)
    dens = np.exp([-mixture_nll(params, np.array([g]), -8, 8) for g in grid])
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)
