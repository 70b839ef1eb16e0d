"""The batched MLE engine against analytic likelihoods and a scipy per-shower reference."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq, minimize_scalar

from caloray.calibrate import (
    FLAG_AT_LOWER_EDGE,
    FLAG_AT_UPPER_EDGE,
    FLAG_NO_LOWER_CROSSING,
    FLAG_NO_UPPER_CROSSING,
    FLAG_NON_FINITE,
    MLESettings,
    find_mle,
)


def gaussian_likelihood(x: torch.Tensor, a: float = 0.5):
    """x ~ N(z, σ(z)) with σ(z) = a·sqrt(z): ℓ(z) = −½((x − z)/σ)² − log σ."""

    def log_likelihood(z, rows):
        sigma = a * torch.sqrt(z)
        return -0.5 * ((x[rows, None] - z) / sigma) ** 2 - torch.log(sigma)

    return log_likelihood


def test_constant_width_gaussian_is_exact():
    x = torch.tensor([20.0, 35.5, 60.0], dtype=torch.float64)

    def log_likelihood(z, rows):
        return -0.5 * ((x[rows, None] - z) / 2.0) ** 2

    result = find_mle(log_likelihood, 3, 1.0, 100.0)
    assert torch.allclose(result.e_pred, x, rtol=1e-7)
    assert torch.allclose(result.z_lo, x - 2.0, rtol=1e-9)
    assert torch.allclose(result.z_hi, x + 2.0, rtol=1e-9)
    assert torch.allclose(result.resolution, torch.full((3,), 2.0, dtype=torch.float64), rtol=1e-8)
    assert torch.allclose(result.asymmetry, torch.ones(3, dtype=torch.float64), rtol=1e-7)
    assert result.flags.tolist() == [0, 0, 0]


def test_matches_scipy_reference_and_covers_68_percent():
    generator = torch.Generator().manual_seed(1)
    n = 4000
    z_true = torch.full((n,), 50.0, dtype=torch.float64)
    x = z_true + 0.5 * torch.sqrt(z_true) * torch.randn(n, generator=generator, dtype=torch.float64)
    result = find_mle(gaussian_likelihood(x), n, 1.0, 100.0)
    for b in range(25):
        xb = float(x[b])

        def nll(z, xb=xb):
            sigma = 0.5 * math.sqrt(z)
            return 0.5 * ((xb - z) / sigma) ** 2 + math.log(sigma)

        best = minimize_scalar(nll, bounds=(1.0, 100.0), method="bounded", options={"xatol": 1e-11})
        lo = brentq(lambda z, best=best, nll=nll: 2 * (nll(z) - best.fun) - 1, 1.0, best.x, xtol=1e-13)
        hi = brentq(lambda z, best=best, nll=nll: 2 * (nll(z) - best.fun) - 1, best.x, 100.0, xtol=1e-13)
        assert float(result.e_pred[b]) == pytest.approx(best.x, rel=1e-6)
        assert float(result.z_lo[b]) == pytest.approx(lo, rel=1e-8)
        assert float(result.z_hi[b]) == pytest.approx(hi, rel=1e-8)
    covered = ((result.z_lo <= z_true) & (z_true <= result.z_hi)).double().mean().item()
    assert abs(covered - 0.6827) < 3 * math.sqrt(0.68 * 0.32 / n)


def test_boundaries_are_flagged_not_extrapolated():
    x = torch.tensor([0.2, 99.9, 150.0, 50.0], dtype=torch.float64)

    def log_likelihood(z, rows):
        return -0.5 * ((x[rows, None] - z) / 1.0) ** 2

    result = find_mle(log_likelihood, 4, 1.0, 100.0)
    assert result.e_pred[0].item() == pytest.approx(1.0)
    assert result.flags[0] & FLAG_AT_LOWER_EDGE and result.flags[0] & FLAG_NO_LOWER_CROSSING
    assert math.isnan(result.z_lo[0].item()) and math.isnan(result.resolution[0].item())
    # Crossing measured from the boundary maximum: (z − 0.2)² = 0.8² + 1.
    assert result.z_hi[0].item() == pytest.approx(0.2 + math.sqrt(1.64), rel=1e-8)
    assert result.flags[2] & FLAG_AT_UPPER_EDGE and result.e_pred[2].item() == pytest.approx(100.0)
    assert not result.flags[1] & FLAG_AT_UPPER_EDGE
    assert result.flags[1] & FLAG_NO_UPPER_CROSSING  # 99.9 + 1 lies outside the range
    assert result.flags[3].item() == 0


def test_nan_likelihood_is_flagged():
    def log_likelihood(z, rows):
        out = -0.5 * (z - 10.0) ** 2
        return torch.where(rows[:, None] == 1, torch.full_like(out, torch.nan), out)

    result = find_mle(log_likelihood, 2, 1.0, 100.0)
    assert result.flags[1] & FLAG_NON_FINITE and math.isnan(result.e_pred[1].item())
    assert result.e_pred[0].item() == pytest.approx(10.0, rel=1e-6)


def test_bimodal_likelihood_finds_global_maximum():
    def log_likelihood(z, rows):
        # Peaks wider than the scan spacing (~5% of z): the scan must pick the higher one.
        return torch.logaddexp(-0.5 * ((z - 20.0) / 3.0) ** 2, -0.5 * ((z - 70.0) / 3.0) ** 2 + 0.3)

    result = find_mle(log_likelihood, 1, 1.0, 100.0, MLESettings(n_scan=96))
    assert result.e_pred.item() == pytest.approx(70.0, rel=1e-5)


def test_rejects_bad_range():
    with pytest.raises(ValueError, match="z_min < z_max"):
        find_mle(lambda z, rows: z, 1, 10.0, 1.0)


def test_numpy_free_of_grid_spacing():
    # A likelihood much narrower than the scan spacing still gets exact crossings.
    x = torch.tensor([42.0], dtype=torch.float64)

    def log_likelihood(z, rows):
        return -0.5 * ((x[rows, None] - z) / 0.01) ** 2

    result = find_mle(log_likelihood, 1, 1.0, 100.0)
    assert np.allclose([result.z_lo.item(), result.z_hi.item()], [41.99, 42.01], rtol=1e-9)


def test_edge_flag_is_local_to_the_edge():
    # Range 1–100 at rtol 1e-5: the old global tolerance (10·rtol·z_max = 0.01) flagged maxima up to 1% above
    # z_min = 1. Now only a maximum on the edge itself is flagged.
    x = torch.tensor([1.01, 1.001, 0.9, 99.0, 100.5], dtype=torch.float64)

    def log_likelihood(z, rows):
        return -0.5 * ((x[rows, None] - z) / 0.5) ** 2

    result = find_mle(log_likelihood, 5, 1.0, 100.0, MLESettings(rtol=1e-5))
    assert result.e_pred[:2].tolist() == pytest.approx([1.01, 1.001], rel=1e-5)
    assert not result.flags[0] & FLAG_AT_LOWER_EDGE and not result.flags[1] & FLAG_AT_LOWER_EDGE
    assert result.flags[2] & FLAG_AT_LOWER_EDGE and result.e_pred[2].item() == pytest.approx(1.0)
    assert not result.flags[3] & FLAG_AT_UPPER_EDGE
    assert result.flags[4] & FLAG_AT_UPPER_EDGE and result.e_pred[4].item() == pytest.approx(100.0)


def test_piecewise_linear_peak_is_bracketed():
    # A ReLU network's likelihood is piecewise smooth: a tent-shaped maximum (kink at the top) has no
    # useful curvature there; the bracket must still close in on it.
    x = torch.tensor([7.3, 42.0], dtype=torch.float64)

    def log_likelihood(z, rows):
        return -3.0 * (torch.log(z) - torch.log(x[rows, None])).abs()

    result = find_mle(log_likelihood, 2, 1.0, 100.0)
    assert result.e_pred.tolist() == pytest.approx(x.tolist(), rel=1e-5)
    # ℓ = −3|u − u*| crosses ℓ_max − 1/2 at u* ± 1/6.
    assert result.z_lo.tolist() == pytest.approx((x * math.exp(-1 / 6)).tolist(), rel=1e-6)
    assert result.z_hi.tolist() == pytest.approx((x * math.exp(1 / 6)).tolist(), rel=1e-6)
