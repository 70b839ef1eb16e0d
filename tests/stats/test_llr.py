"""LLR statistic against the analytic Gaussian case."""

from __future__ import annotations

import math

import numpy as np
import torch

from caloray.stats import log_likelihood_ratio
from caloray.stats import numpy_api as api

MU = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)


def log_standard_normal(y: torch.Tensor) -> torch.Tensor:
    return -0.5 * (y**2).sum(-1) - 0.5 * y.shape[-1] * math.log(2 * math.pi)


def log_shifted_normal(y: torch.Tensor) -> torch.Tensor:
    return log_standard_normal(y - MU.to(y.device))


def test_llr_equals_the_analytic_expression() -> None:
    # p = N(0, I), q = N(μ, I): −2 Σ log(p/q) = 2 Σ yᵀμ − m |μ|².
    rng = np.random.default_rng(0)
    y = torch.as_tensor(rng.normal(size=(4, 50, 3)))
    got = log_likelihood_ratio(y, log_standard_normal, log_shifted_normal)
    expected = 2 * (y @ MU).sum(dim=1) - 50 * (MU @ MU)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_llr_distribution_under_both_hypotheses() -> None:
    # Under Y ~ q: mean m|μ|², variance 4 m|μ|²; under Y ~ p: mean −m|μ|².
    rng = np.random.default_rng(1)
    m, reps = 100, 4000
    mu2 = float(MU @ MU)
    y_alt = torch.as_tensor(rng.normal(size=(reps, m, 3))) + MU
    y_null = torch.as_tensor(rng.normal(size=(reps, m, 3)))
    alt = log_likelihood_ratio(y_alt, log_standard_normal, log_shifted_normal)
    null = log_likelihood_ratio(y_null, log_standard_normal, log_shifted_normal)
    se = math.sqrt(4 * m * mu2 / reps)
    assert abs(alt.mean().item() - m * mu2) < 4 * se
    assert abs(null.mean().item() + m * mu2) < 4 * se
    assert abs(alt.var().item() / (4 * m * mu2) - 1) < 0.1


def test_numpy_llr_wrapper() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=(30, 3))
    mu = MU.numpy()

    def log_p(a: np.ndarray) -> np.ndarray:
        return -0.5 * (a**2).sum(-1)

    def log_q(a: np.ndarray) -> np.ndarray:
        return -0.5 * ((a - mu) ** 2).sum(-1)

    got = api.log_likelihood_ratio(y, log_p, log_q)
    np.testing.assert_allclose(got, [2 * (y @ mu).sum() - 30 * mu @ mu], rtol=1e-10)
