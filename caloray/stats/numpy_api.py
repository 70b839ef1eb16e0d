"""Numpy in, numpy out: the statistics for notebooks. Arrays are (n, d) or (R, n, d); results (R,)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from caloray.stats import frechet, ks, llr, mmd, projections, sliced
from caloray.stats.frechet import FGD_INF_DRAWS, FGD_INF_FRACTIONS


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a))


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def random_directions(d: int, n_slices: int, seed: int) -> np.ndarray:
    """(d, K) float64 unit directions, identical to `caloray.stats.projections.random_directions`."""
    return _numpy(projections.random_directions(d, n_slices, seed))


def mean_ks(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean-KS per replicate, (R,) float64."""
    return _numpy(ks.mean_ks(_tensor(x), _tensor(y)))


def ks_per_dimension(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Scaled KS statistic of every marginal, (R, d) float64."""
    return _numpy(ks.ks_per_dimension(_tensor(x), _tensor(y)))


def sliced_ks(x: np.ndarray, y: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Sliced KS over the columns of `directions` (d, K), (R,) float64."""
    return _numpy(sliced.sliced_ks(_tensor(x), _tensor(y), _tensor(directions)))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Sliced Wasserstein-1 over the columns of `directions` (d, K), (R,) float64."""
    return _numpy(sliced.sliced_wasserstein(_tensor(x), _tensor(y), _tensor(directions)))


def mmd_polynomial(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unbiased MMD² with kernel (xᵀy/d + 1)^4, (R,) float64."""
    return _numpy(mmd.mmd_polynomial(_tensor(x), _tensor(y)))


def fgd(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fréchet Gaussian distance, (R,) float64."""
    return _numpy(frechet.fgd(_tensor(x), _tensor(y)))


def fgd_inf(
    x: np.ndarray, y: np.ndarray, seed: int = 0, fractions: tuple[float, ...] = FGD_INF_FRACTIONS,
    n_draws: int = FGD_INF_DRAWS,
) -> np.ndarray:
    """FGD extrapolated to 1/N = 0 (non-negative fit over subsample sizes), (R,) float64."""
    return _numpy(frechet.fgd_inf(_tensor(x), _tensor(y), seed=seed, fractions=fractions, n_draws=n_draws))


def fgd_inf_with_uncertainty(
    x: np.ndarray, y: np.ndarray, seed: int = 0, fractions: tuple[float, ...] = FGD_INF_FRACTIONS,
    n_draws: int = FGD_INF_DRAWS,
) -> tuple[np.ndarray, np.ndarray]:
    """FGD∞ and the standard error of the fit's intercept, each (R,) float64 (see `frechet.fgd_inf_fit`)."""
    fit = frechet.fgd_inf_fit(_tensor(x), _tensor(y), seed=seed, fractions=fractions, n_draws=n_draws)
    return _numpy(fit.value), _numpy(fit.uncertainty)


def log_likelihood_ratio(
    y: np.ndarray,
    log_p: Callable[[np.ndarray], np.ndarray],
    log_q: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """−2 Σ_y log(p(y)/q(y)) with numpy log densities mapping (..., d) → (...), (R,) float64."""

    def wrap(f: Callable[[np.ndarray], np.ndarray]) -> llr.LogDensity:
        return lambda t: torch.as_tensor(np.asarray(f(_numpy(t)), dtype=np.float64))

    return _numpy(llr.log_likelihood_ratio(_tensor(y), wrap(log_p), wrap(log_q)))
