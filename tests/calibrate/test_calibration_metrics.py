"""Bias (KDE mode with bootstraps) and full resolution on known distributions."""

import numpy as np
import pytest

from caloray.calibrate import bootstrap_mode, full_resolution, kde_mode


def test_mode_of_a_skewed_distribution():
    rng = np.random.default_rng(0)
    # Gamma(k=9, θ=0.1): mode (k − 1)θ = 0.8, mean 0.9 — the KDE mode must find the mode, not the mean.
    values = rng.gamma(9.0, 0.1, 20_000)
    assert kde_mode(values) == pytest.approx(0.8, abs=0.02)
    estimate = bootstrap_mode(values, n_bootstrap=20, seed=1)
    assert estimate.mode == pytest.approx(0.8, abs=0.02)
    assert 0 < estimate.uncertainty < 0.02
    assert estimate.bias == pytest.approx(estimate.mode - 1)


def test_full_resolution_of_a_gaussian_is_its_sigma():
    values = np.random.default_rng(2).normal(1.0, 0.1, 50_000)
    assert full_resolution(values, 1.0) == pytest.approx(0.1 * 0.9945, rel=0.02)  # 68% not 68.27%


def test_bootstrap_is_deterministic_and_rejects_tiny_samples():
    values = np.random.default_rng(3).normal(1.0, 0.1, 500)
    assert bootstrap_mode(values, seed=4) == bootstrap_mode(values, seed=4)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_mode(np.array([1.0, np.nan]))
