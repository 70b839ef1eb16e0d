"""Sliced statistics: 1-D KS and Wasserstein-1 averaged over K fixed random directions.

Expected behaviour (spec/science.md §2, measured in tests/validate/test_power.py): a discrepancy in
only k of D coordinates reaches a random direction θ with weight |θ_S| ~ sqrt(k/D), so sliced tests
lose power on sparse discrepancies. A sparse *shape* change (2 of 16 coordinates made bimodal with
unchanged mean and variance) is nearly invisible to SKS (power 0.06 at α = 0.05, batch 512) while
mean-KS sees it (0.995). For a sparse *mean shift* the diluted shift still adds up over all slices:
there SKS can beat mean-KS (whose per-dimension signal is diluted by 1/D), but its power still falls
with D at fixed k (0.995 at D = 4 → 0.39 at D = 64 for one coordinate shifted by 0.5σ, batch 256).
"""

from __future__ import annotations

from torch import Tensor

from caloray.stats._shapes import as_replicate_pair, ks_scale
from caloray.stats.ecdf import ks_sup_rows, per_column, wasserstein1_rows
from caloray.stats.projections import project


def sliced_ks(x: Tensor, y: Tensor, directions: Tensor) -> Tensor:
    """SKS = (1/K) Σ_θ sqrt(nm/(n+m)) sup_u |F_n^θ − G_m^θ| over θ = columns of `directions` (d, K).

    x (R, n, d), y (R, m, d) → (R,) float64.
    """
    x, y = as_replicate_pair(x, y)
    px, py = project(x, directions, keep_float32=True), project(y, directions, keep_float32=True)
    return ks_scale(x.shape[1], y.shape[1]) * per_column(px, py, ks_sup_rows).mean(dim=-1)


def mean_wasserstein(x: Tensor, y: Tensor) -> Tensor:
    """(1/d) Σ_I W1 of the d marginals: x (R, n, d), y (R, m, d) → (R,) float64 (SWD of projected samples)."""
    x, y = as_replicate_pair(x, y)
    return per_column(x, y, wasserstein1_rows).mean(dim=-1)


def sliced_wasserstein(x: Tensor, y: Tensor, directions: Tensor) -> Tensor:
    """SWD = (1/K) Σ_θ W1(θᵀX, θᵀY) over the columns of `directions` (d, K), in the units of x.

    x (R, n, d), y (R, m, d) → (R,) float64.
    """
    x, y = as_replicate_pair(x, y)
    return mean_wasserstein(project(x, directions, keep_float32=True), project(y, directions, keep_float32=True))
