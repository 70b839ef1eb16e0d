"""Bias and resolution of E_pred/E_true at fixed E_true (science spec §1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import gaussian_kde


@dataclass(frozen=True)
class ModeEstimate:
    """Mode of a ratio distribution (mean over bootstraps) and its uncertainty (their std)."""

    mode: float
    uncertainty: float

    @property
    def bias(self) -> float:
        """Bias = mode − 1."""
        return self.mode - 1.0


def kde_mode(values: np.ndarray, grid_points: int = 2001) -> float:
    """Argmax of a Gaussian KDE (Scott's bandwidth) on a fine grid spanning the values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    kde = gaussian_kde(values, bw_method="scott")
    lo, hi = np.quantile(values, [0.001, 0.999])
    grid = np.linspace(lo, hi, grid_points)
    return float(grid[np.argmax(kde(grid))])


def bootstrap_mode(ratios: np.ndarray, n_bootstrap: int = 20, seed: int = 0) -> ModeEstimate:
    """Draw N of the N ratios with replacement, take the KDE mode; mean and std over `n_bootstrap` draws."""
    ratios = np.asarray(ratios, dtype=np.float64)
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size < 2:
        raise ValueError(f"need at least 2 finite ratios for a mode, got {ratios.size}")
    rng = np.random.default_rng(seed)
    modes = np.array([kde_mode(rng.choice(ratios, size=ratios.size, replace=True)) for _ in range(n_bootstrap)])
    return ModeEstimate(float(modes.mean()), float(modes.std(ddof=1)))


def full_resolution(ratios: np.ndarray, mode: float, coverage: float = 0.68) -> float:
    """Half-width w of the interval [mode − w, mode + w] that holds `coverage` of the ratios.

    This reads the spec's "central 68% interval about the mode" as the interval centred on the mode.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    ratios = ratios[np.isfinite(ratios)]
    return float(np.quantile(np.abs(ratios - mode), coverage))
