"""Quantile MSE vs its analytic expectation; amplification factors on cases with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.amplify.generator import ResampleGenerator
from caloray.amplify.metrics import (
    amplification_factor,
    equivalent_truth_events,
    fit_mse_curve,
    quantile_fractions,
    quantile_mse,
    sample_quantile_mse,
    summarize_amplification,
    truth_mse,
)
from caloray.amplify.truth import camel_back


def test_quantile_fractions_open_outer_quantiles():
    edges = np.array([-8.0, -1.0, 0.0, 1.0, 8.0])
    p = quantile_fractions(np.array([-20.0, -8.0, -0.5, 0.0, 0.5, 8.0, 9.0, 3.0]), edges)
    np.testing.assert_allclose(p, [2 / 8, 1 / 8, 2 / 8, 3 / 8])
    assert quantile_mse(np.full(7, 1 / 7)) == 0.0
    assert quantile_mse(np.array([1.0, 0.0])) == pytest.approx(0.25)


def test_truth_mse_inverse():
    assert truth_mse(100, 50) == pytest.approx(0.98 / 5000)
    assert equivalent_truth_events(truth_mse(321.0, 20), 20) == pytest.approx(321.0)
    assert amplification_factor(truth_mse(500, 10), 10, 100) == pytest.approx(5.0)


@pytest.mark.parametrize(("n_quantiles", "n_events"), [(10, 100), (50, 100), (20, 1000)])
def test_truth_sample_mse_matches_analytic_expectation(n_quantiles, n_events):
    """Monte Carlo mean of the quantile MSE of truth samples = (1 − 1/N_q)/(N_q N), within 4 standard errors."""
    truth = camel_back()
    edges = truth.quantile_edges(n_quantiles)
    rng = np.random.default_rng(n_quantiles * 7 + n_events)
    values = np.array([sample_quantile_mse(truth.sample(n_events, rng), edges) for _ in range(1500)])
    sem = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - truth_mse(n_events, n_quantiles)) < 4 * sem
    assert sem < 0.05 * truth_mse(n_events, n_quantiles)  # the test has power


def test_curve_fit_recovers_plateau_of_a_known_generator():
    """Multinomial draws from fixed probabilities q: E[MSE(N)] = MSE(q) + Σq(1−q)/(N_q N)."""
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.full(20, 40.0))
    sizes = np.array([100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000])
    mse = [np.mean([quantile_mse(rng.multinomial(n, q) / n) for _ in range(20)]) for n in sizes]
    a, b = fit_mse_curve(sizes, mse)
    assert a == pytest.approx(quantile_mse(q), rel=0.05)
    assert b == pytest.approx(np.sum(q * (1 - q)) / q.size, rel=0.1)


def test_fit_mse_curve_noiseless_and_nonnegative():
    sizes = np.array([10, 100, 1000, 10_000])
    a, b = fit_mse_curve(sizes, 2e-4 + 0.09 / sizes)
    assert a == pytest.approx(2e-4, rel=1e-6) and b == pytest.approx(0.09, rel=1e-6)
    a, _ = fit_mse_curve(sizes, 0.09 / sizes)  # a pure truth curve has no plateau
    assert a == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n_quantiles", [10, 50])
def test_amplification_of_resampled_larger_sample_is_m_over_n(n_quantiles):
    """A 'generator' that resamples m = 5n truth events holds exactly m events of information: factor m/n = 5."""
    truth, n, m = camel_back(), 100, 500
    edges = truth.quantile_edges(n_quantiles)
    sizes = [1_000, 10_000, 100_000]
    rng = np.random.default_rng(11)
    curve_plateaus, exact_plateaus = [], []
    for _ in range(200):
        gen = ResampleGenerator(truth.sample(m, rng))
        mse = [sample_quantile_mse(gen.sample(s, rng), edges) for s in sizes]
        curve_plateaus.append(fit_mse_curve(sizes, mse)[0])
        exact_plateaus.append(quantile_mse(gen.quantile_probabilities(edges)))
    for plateaus in (curve_plateaus, exact_plateaus):
        est = summarize_amplification(plateaus, n_quantiles, n)
        assert est.repetitions == 200
        assert abs(est.factor - m / n) < 4 * est.factor_err
        assert est.factor_err < 0.1 * est.factor


def test_summarize_amplification_propagates_error():
    est = summarize_amplification([1e-4, 2e-4, 3e-4], 10, 100)
    assert est.mse_mean == pytest.approx(2e-4)
    assert est.factor == pytest.approx(0.09 / 2e-4 / 100)
    assert est.factor_err == pytest.approx(est.factor * (1e-4 / np.sqrt(3)) / 2e-4)
    assert est.rep_mean == pytest.approx(np.mean(0.09 / np.array([1e-4, 2e-4, 3e-4]) / 100))
