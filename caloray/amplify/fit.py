"""The paper's benchmark: a 5-parameter maximum-likelihood fit of the two-Gaussian mixture to the training events.

Parameters (μ₁, μ₂, σ₁, σ₂, f): means, widths and the first component's fraction; the model is the same
truncated mixture as the truth (normalised on [low, high]). Components are ordered so that μ₁ ≤ μ₂.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr, logsumexp

from caloray.amplify.truth import GaussianMixture

#: Box guards for the optimiser (σ ≥ 0.02 stops a component collapsing onto one event).
_SIGMA_MIN, _FRACTION_MIN = 0.02, 1e-3


@dataclass(frozen=True)
class MixtureFit:
    """Result of `fit_two_gaussians`: fitted parameters, the fitted model, the minimised NLL."""

    means: tuple[float, float]
    sigmas: tuple[float, float]
    fraction: float
    nll: float
    success: bool
    model: GaussianMixture


def _log_norm_cdf_diff(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) for b > a, stable in both tails."""
    return log_ndtr(b) + np.log1p(-np.exp(np.minimum(log_ndtr(a) - log_ndtr(b), -1e-300)))


def mixture_nll(params: np.ndarray, x: np.ndarray, low: float, high: float) -> float:
    """Mean negative log-likelihood of the truncated mixture with params (μ₁, μ₂, σ₁, σ₂, f)."""
    mu = np.asarray(params[:2], dtype=float)
    sd = np.asarray(params[2:4], dtype=float)
    f = float(params[4])
    log_w = np.log(np.array([f, 1.0 - f]))
    z = (x[:, None] - mu) / sd
    log_comp = -0.5 * z**2 - np.log(sd) - 0.5 * np.log(2 * np.pi) + log_w
    log_mass = logsumexp(log_w + _log_norm_cdf_diff((high - mu) / sd, (low - mu) / sd))
    return float(-(logsumexp(log_comp, axis=1).mean() - log_mass))


def _starts(x: np.ndarray) -> list[np.ndarray]:
    """A few data-driven starting points: median split, quartiles, and sign split when both signs occur."""
    spread = max(float(np.std(x)), 1e-3)
    median = float(np.median(x))
    starts = []
    for cut in {median, 0.0} if (x < 0).any() and (x > 0).any() else {median}:
        lo, hi = x[x <= cut], x[x > cut]
        if lo.size >= 2 and hi.size >= 2:
            starts.append(np.array([lo.mean(), hi.mean(), lo.std() + 0.1, hi.std() + 0.1, lo.size / x.size]))
    q1, q3 = np.quantile(x, [0.25, 0.75])
    starts.append(np.array([q1, q3, spread / 2, spread / 2, 0.5]))
    return starts


def fit_two_gaussians(x: np.ndarray, low: float = -8.0, high: float = 8.0) -> MixtureFit:
    """Maximum-likelihood fit of f·N(μ₁, σ₁) + (1 − f)·N(μ₂, σ₂), truncated to [low, high], to events `x`.

    L-BFGS-B from several starts within box guards (means in the range, σ ∈ [0.02, range], f ∈ (0, 1));
    the best local optimum wins.
    """
    x = np.asarray(x, dtype=float).ravel()
    if x.size < 5:
        raise ValueError("need at least 5 events to fit 5 parameters")
    width = high - low
    bounds = [(low, high), (low, high), (_SIGMA_MIN, width), (_SIGMA_MIN, width), (_FRACTION_MIN, 1 - _FRACTION_MIN)]
    best = None
    for start in _starts(x):
        start = np.array([np.clip(v, lo, hi) for v, (lo, hi) in zip(start, bounds, strict=True)])
        res = minimize(mixture_nll, start, args=(x, low, high), method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    mu1, mu2, s1, s2, f = (float(v) for v in best.x)
    if mu1 > mu2:  # order the components
        mu1, mu2, s1, s2, f = mu2, mu1, s2, s1, 1.0 - f
    model = GaussianMixture(weights=(f, 1.0 - f), means=(mu1, mu2), sigmas=(s1, s2), low=low, high=high)
    return MixtureFit((mu1, mu2), (s1, s2), f, float(best.fun), bool(best.success), model)
