"""FGD against scipy.linalg.sqrtm, and FGD∞ against a hand numpy polyfit in 1/N."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from caloray.stats import fgd, fgd_inf
from caloray.stats.frechet import fgd_inf_rows, fgd_inf_sizes


def _scipy_fgd(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * root))


def test_fgd_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(4, 4))
    x = rng.normal(size=(3, 200, 4)) @ mix
    y = rng.normal(0.3, 1.0, size=(3, 150, 4)) @ (mix + 0.2 * np.eye(4))
    got = fgd(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    expected = [_scipy_fgd(x[r], y[r]) for r in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_fgd_of_known_gaussians() -> None:
    # FGD(N(0, I), N(μ, 4I)) = |μ|² + d (1 + 4 − 2·2) = |μ|² + d, approached by big samples.
    rng = np.random.default_rng(1)
    d = 3
    x = rng.normal(size=(200000, d))
    y = rng.normal(0.5, 2.0, size=(200000, d))
    value = fgd(torch.as_tensor(x), torch.as_tensor(y)).item()
    assert value == pytest.approx(d * 0.25 + d, rel=0.01)


def test_fgd_inf_matches_hand_polyfit() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 300, 3))
    y = rng.normal(0.1, 1.1, size=(2, 250, 3))
    got = fgd_inf(torch.as_tensor(x), torch.as_tensor(y), seed=5).numpy()
    sizes = fgd_inf_sizes(300, 250)
    assert sizes == [50, 100, 150, 200, 250]
    order_x, order_y = (o.numpy() for o in fgd_inf_rows(300, 250, seed=5))
    for r in range(2):
        values = [_scipy_fgd(x[r, order_x[:s]], y[r, order_y[:s]]) for s in sizes]
        slope, intercept = np.polyfit(1.0 / np.asarray(sizes), values, deg=1)
        assert got[r] == pytest.approx(intercept, rel=1e-6)
        assert slope != 0.0


def test_fgd_inf_removes_most_of_the_finite_sample_bias() -> None:
    # Equal distributions: FGD's mean is a positive bias ~ 1/N, FGD∞'s mean is near 0.
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.normal(size=(300, 200, 4)))
    y = torch.as_tensor(rng.normal(size=(300, 200, 4)))
    plain = fgd(x, y)
    extrapolated = fgd_inf(x, y, seed=0)
    assert plain.mean() > 10 * plain.std() / np.sqrt(300)  # the bias is significant
    assert abs(extrapolated.mean().item()) < 0.2 * plain.mean().item()


def test_fgd_inf_needs_two_sizes() -> None:
    with pytest.raises(ValueError, match="2 distinct"):
        fgd_inf_sizes(10, 10, fractions=(1.0,))
