"""Truth density, CDF and equal-probability quantiles of the camel back."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, stats

from caloray.amplify.truth import GaussianMixture, camel_back


def test_density_integrates_to_one_and_is_truncated():
    truth = camel_back()
    total, _ = integrate.quad(truth.pdf, -8, 8, points=[-4, 4], epsabs=1e-13, epsrel=1e-13)
    assert total == pytest.approx(1.0, abs=1e-10)
    assert truth.pdf(np.array([-8.5, 8.5])).tolist() == [0.0, 0.0]
    # truncation matters at the 3e-5 level: the untruncated mass inside [-8, 8]
    expected = 0.5 * (stats.norm.cdf(12) - stats.norm.cdf(-4)) + 0.5 * (stats.norm.cdf(4) - stats.norm.cdf(-12))
    assert truth.normalization == pytest.approx(expected, rel=1e-12)


def test_cdf_matches_integrated_density():
    truth = camel_back()
    for x in (-7.0, -4.0, -1.3, 0.0, 2.2, 5.5, 8.0):
        integral, _ = integrate.quad(truth.pdf, -8, x, points=[v for v in (-4, 4) if -8 < v < x], epsabs=1e-13)
        assert truth.cdf(np.array(x)) == pytest.approx(integral, abs=1e-11)
    assert truth.cdf(np.array([-9.0, 9.0])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("n_quantiles", [10, 20, 50])
def test_each_quantile_has_equal_probability(n_quantiles):
    truth = camel_back()
    edges = truth.quantile_edges(n_quantiles)
    assert edges[0] == -8 and edges[-1] == 8 and np.all(np.diff(edges) > 0)
    masses = [integrate.quad(truth.pdf, a, b, epsabs=1e-13, epsrel=1e-12)[0] for a, b in itertools.pairwise(edges)]
    np.testing.assert_allclose(masses, 1.0 / n_quantiles, atol=1e-10)
    np.testing.assert_allclose(truth.quantile_probabilities(edges), 1.0 / n_quantiles, atol=1e-12)
    np.testing.assert_allclose(edges, -edges[::-1], atol=1e-9)  # symmetric camel back


def test_ppf_inverts_cdf_for_asymmetric_mixture():
    mix = GaussianMixture(weights=(0.3, 0.7), means=(-1.0, 2.5), sigmas=(0.5, 1.5), low=-3.0, high=6.0)
    u = np.linspace(0.001, 0.999, 41)
    np.testing.assert_allclose(mix.cdf(mix.ppf(u)), u, atol=1e-12)


def test_sampler_follows_the_cdf():
    truth = camel_back()
    x = truth.sample(20_000, np.random.default_rng(3))
    assert x.shape == (20_000,) and x.min() >= -8 and x.max() <= 8
    assert stats.kstest(x, truth.cdf).pvalue > 1e-3
    again = truth.sample(20_000, np.random.default_rng(3))
    np.testing.assert_array_equal(x, again)
