"""Quantile MSE, its analytic expectation for truth samples, and amplification factors from MSE curves.

Convention: the outer quantiles are open-ended, i.e. a generated event outside [low, high] counts in the
first/last quantile (the same as clipping it to the range). Truth events never fall outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import nnls


def quantile_fractions(sample: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """p_j: fraction of `sample` in each of the `len(edges) - 1` quantiles (outer ones open-ended)."""
    sample = np.asarray(sample, dtype=float).ravel()
    if sample.size == 0:
        raise ValueError("empty sample")
    index = np.searchsorted(np.asarray(edges, dtype=float)[1:-1], sample, side="right")
    return np.bincount(index, minlength=len(edges) - 1) / sample.size


def quantile_mse(fractions: np.ndarray) -> float:
    """(1/N_q) Σ_j (p_j − 1/N_q)² for quantile fractions (or probabilities) p_j."""
    p = np.asarray(fractions, dtype=float)
    return float(np.mean((p - 1.0 / p.size) ** 2))


def sample_quantile_mse(sample: np.ndarray, edges: np.ndarray) -> float:
    """Quantile MSE of a sample w.r.t. truth quantiles `edges`."""
    return quantile_mse(quantile_fractions(sample, edges))


def truth_mse(n_events: float | np.ndarray, n_quantiles: int) -> float | np.ndarray:
    """Expected quantile MSE of `n_events` truth events: (1 − 1/N_q) / (N_q · N) (multinomial variance)."""
    return (1.0 - 1.0 / n_quantiles) / (n_quantiles * np.asarray(n_events, dtype=float))


def equivalent_truth_events(mse: float | np.ndarray, n_quantiles: int) -> float | np.ndarray:
    """Number of truth events whose expected quantile MSE equals `mse` (inverse of `truth_mse`)."""
    return (1.0 - 1.0 / n_quantiles) / (n_quantiles * np.asarray(mse, dtype=float))


def fit_mse_curve(sizes: Sequence[int], mse: Sequence[float], *, iterations: int = 5) -> tuple[float, float]:
    """Fit MSE(N) = a + b/N (a, b ≥ 0) to a generator's quantile MSE at sample sizes N; returns (a, b).

    For quantile probabilities q_j, E[MSE(N)] = (1/N_q) Σ (q_j − 1/N_q)² + (1/N_q) Σ q_j(1 − q_j)/N exactly,
    so `a` is the asymptotic (plateau) MSE. Relative errors of MSE estimates are roughly size-independent,
    hence weights 1/model², refined by iteratively reweighted non-negative least squares.
    """
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(mse, dtype=float)
    if n.shape != y.shape or n.size < 2:
        raise ValueError("need matching sizes and MSE values, at least two points")
    design = np.stack([np.ones_like(n), 1.0 / n], axis=1)
    scale = np.maximum(y, np.finfo(float).tiny)
    a = b = 0.0
    for _ in range(iterations):
        (a, b), _ = nnls(design / scale[:, None], y / scale)
        model = a + b / n
        if not np.all(model > 0):
            break
        scale = model
    return float(a), float(b)


def amplification_factor(asymptotic_mse: float | np.ndarray, n_quantiles: int, n_train: int) -> float | np.ndarray:
    """(truth events with expected MSE equal to `asymptotic_mse`) / `n_train`."""
    return equivalent_truth_events(asymptotic_mse, n_quantiles) / n_train


@dataclass(frozen=True)
class AmplificationEstimate:
    """Amplification over repetitions. Central value from the mean asymptotic MSE (the expectation over
    training samples, like the truth side); `factor_err` propagates the standard error of that mean;
    `rep_mean`/`rep_std` describe the per-repetition factors."""

    n_quantiles: int
    n_train: int
    repetitions: int
    mse_mean: float
    mse_sem: float
    equivalent_events: float
    factor: float
    factor_err: float
    rep_mean: float
    rep_std: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize_amplification(asymptotic_mse: Sequence[float], n_quantiles: int, n_train: int) -> AmplificationEstimate:
    """Combine per-repetition asymptotic MSEs into an amplification factor with uncertainty."""
    a = np.asarray(asymptotic_mse, dtype=float)
    if a.size == 0:
        raise ValueError("no repetitions")
    mean = float(a.mean())
    sem = float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else float("nan")
    factor = float(amplification_factor(mean, n_quantiles, n_train)) if mean > 0 else float("inf")
    with np.errstate(divide="ignore"):
        per_rep = np.asarray(amplification_factor(a, n_quantiles, n_train), dtype=float)
    finite = per_rep[np.isfinite(per_rep)]
    return AmplificationEstimate(
        n_quantiles=n_quantiles,
        n_train=n_train,
        repetitions=int(a.size),
        mse_mean=mean,
        mse_sem=sem,
        equivalent_events=float(equivalent_truth_events(mean, n_quantiles)) if mean > 0 else float("inf"),
        factor=factor,
        factor_err=factor * sem / mean if mean > 0 else float("nan"),
        rep_mean=float(finite.mean()) if finite.size else float("nan"),
        rep_std=float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
    )
