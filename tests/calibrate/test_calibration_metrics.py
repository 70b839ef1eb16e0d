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


def test_bias_table_rows_per_true_energy():
    """Two energies with Gaussian ratios N(μ, σ): mode ≈ μ, full resolution ≈ 0.994 σ (the 68% half-width
    of a normal), per-shower resolution and the asymmetry fraction are plain means; NaN fits are counted."""
    from caloray.calibrate import bias_table

    rng = np.random.default_rng(3)
    n = 4000
    truth = np.repeat([10_000.0, 50_000.0], n)
    ratio = np.concatenate([rng.normal(1.05, 0.10, n), rng.normal(0.98, 0.05, n)])
    pred = ratio * truth
    pred[:100] = np.nan
    resolution = np.concatenate([np.full(n, 1_200.0), np.full(n, 2_000.0)])
    asymmetry = np.concatenate([np.full(n // 4, 1.5), np.full(n - n // 4, 0.8), np.full(n, 1.2)])
    low, high = bias_table(truth, pred, resolution, asymmetry, n_bootstrap=5, seed=0)
    assert (low["E_true [GeV]"], low["n"], low["n_non_finite"]) == (10.0, n, 100)
    assert low["mode"] == pytest.approx(1.05, abs=0.015) and high["mode"] == pytest.approx(0.98, abs=0.008)
    assert low["bias"] == pytest.approx(low["mode"] - 1)
    assert low["full resolution"] == pytest.approx(0.0994, rel=0.06)
    assert high["full resolution"] == pytest.approx(0.0497, rel=0.06)
    assert low["mean per-shower resolution"] == pytest.approx(0.12) and high["mean per-shower resolution"] == 0.04
    assert low["Δ_L/Δ_U > 1"] == 0.25 and high["Δ_L/Δ_U > 1"] == 1.0
    (only_nan,) = bias_table(np.full(3, 1e4), np.full(3, np.nan), np.full(3, np.nan), np.full(3, np.nan))
    assert only_nan["n_non_finite"] == 3 and np.isnan(only_nan["mode"])
