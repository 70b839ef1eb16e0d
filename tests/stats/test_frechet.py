"""FGD against scipy.linalg.sqrtm; FGD∞ against hand subsample means, numpy polyfit and scipy nnls, an analytic
population value and its own seed-to-seed scatter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm
from scipy.optimize import nnls

from caloray.stats import fgd, fgd_inf
from caloray.stats.frechet import FGD_INF_DRAWS, fgd_inf_draws, fgd_inf_fit, fgd_inf_sizes, nonnegative_line_fit


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


def test_fgd_inf_matches_hand_means_and_polyfit() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 300, 3))
    y = rng.normal(0.3, 1.1, size=(2, 250, 3))
    fit = fgd_inf_fit(torch.as_tensor(x), torch.as_tensor(y), seed=5)
    sizes = fgd_inf_sizes(300, 250)
    assert fit.sizes == sizes == [83, 125, 167, 208, 250]  # five sizes, a third of min(n, m) up to all of it
    draws = fgd_inf_draws(300, 250, sizes, seed=5)
    for (x_rows, y_rows), size in zip(draws, sizes, strict=True):
        assert x_rows.shape == y_rows.shape == (FGD_INF_DRAWS, size)
        assert all(len(set(r.tolist())) == size for r in x_rows)  # without replacement
    assert len({tuple(r.tolist()) for r in draws[0][0]}) == FGD_INF_DRAWS  # independent draws differ
    for r in range(2):
        means = [np.mean([_scipy_fgd(x[r, xr.numpy()], y[r, yr.numpy()]) for xr, yr in zip(*draw, strict=True)])
                 for draw in draws]
        np.testing.assert_allclose(fit.means[r].numpy(), means, rtol=1e-6)
        slope, intercept = np.polyfit(1.0 / np.asarray(sizes), means, deg=1)
        assert slope > 0 and intercept > 0  # a shifted, wider sample: the free fit is already feasible
        assert fit.value[r].item() == pytest.approx(intercept, rel=1e-6)
        assert fit.slope[r].item() == pytest.approx(slope, rel=1e-6)
    np.testing.assert_array_equal(fgd_inf(torch.as_tensor(x), torch.as_tensor(y), seed=5).numpy(), fit.value.numpy())


def test_nonnegative_fit_equals_scipy_nnls() -> None:
    rng = np.random.default_rng(4)
    u = 1.0 / np.array([40.0, 60.0, 80.0, 100.0, 120.0])
    # Lines with every sign combination of (intercept, slope), plus noise: each constraint becomes active somewhere.
    truth = [(0.05, 2.0), (-0.02, 3.0), (0.04, -1.0), (-0.03, -2.0), (0.0, 0.0)]
    values = np.array([a + b * u + rng.normal(0, 0.005, u.size) for a, b in truth for _ in range(20)])
    got_a, got_b = nonnegative_line_fit(torch.as_tensor(u), torch.as_tensor(values))
    design = np.stack([np.ones_like(u), u], axis=1)
    for row, a, b in zip(values, got_a.numpy(), got_b.numpy(), strict=True):
        (want_a, want_b), _ = nnls(design, row)
        assert a >= 0 and b >= 0
        assert a == pytest.approx(want_a, abs=1e-12) and b == pytest.approx(want_b, abs=1e-9)


def test_fgd_inf_is_unbiased_where_fgd_is_not_and_reports_its_seed_scatter() -> None:
    # N(0, I) vs N(μ, I) in d = 4 with |μ|² = 0.08: population FGD = 0.08 (equal covariances).
    rng = np.random.default_rng(3)
    d, rows, samples = 4, 400, 200
    mu = np.full(d, np.sqrt(0.08 / d))
    x = torch.as_tensor(rng.normal(size=(samples, rows, d)))
    y = torch.as_tensor(rng.normal(size=(samples, rows, d)) + mu)
    plain, fit = fgd(x, y), fgd_inf_fit(x, y, seed=0)
    error = fit.value.std().item() / np.sqrt(samples)
    assert plain.mean().item() - 0.08 > 10 * plain.std().item() / np.sqrt(samples)  # FGD: a significant bias ~ 1/N
    assert abs(fit.value.mean().item() - 0.08) < 4 * error  # FGD∞: none beyond its statistical error
    # On one sample, the estimate's scatter over subsampling seeds is what its uncertainty says (within a
    # factor 1.6: 30 seeds estimate a standard deviation to ~13 %), and far below the sampling scatter above.
    by_seed = [fgd_inf_fit(x[0], y[0], seed=s) for s in range(30)]
    scatter = np.std([f.value.item() for f in by_seed], ddof=1)
    reported = np.mean([f.uncertainty.item() for f in by_seed])
    assert reported / 1.6 < scatter < 1.6 * reported
    assert scatter < 0.5 * fit.value.std().item()


def test_fgd_inf_needs_five_sizes_and_several_draws() -> None:
    with pytest.raises(ValueError, match="5 distinct"):
        fgd_inf_sizes(100, 100, fractions=(0.5, 1.0))
    with pytest.raises(ValueError, match="5 distinct"):
        fgd_inf_sizes(4, 4)  # too few rows for five different sizes
    with pytest.raises(ValueError, match="2 draws"):
        fgd_inf_fit(torch.zeros(30, 2), torch.zeros(30, 2), n_draws=1)
