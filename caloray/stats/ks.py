"""Mean-KS: the KS statistic sqrt(nm/(n+m))·sup|F_n − G_m| averaged over the d marginals."""

from __future__ import annotations

from torch import Tensor

from caloray.stats._shapes import as_replicate_pair, ks_scale
from caloray.stats.ecdf import ks_sup_rows, per_column


def ks_per_dimension(x: Tensor, y: Tensor) -> Tensor:
    """Scaled two-sample KS statistic of every marginal: x (R, n, d), y (R, m, d) → (R, d) float64."""
    x, y = as_replicate_pair(x, y)
    return ks_scale(x.shape[1], y.shape[1]) * per_column(x, y, ks_sup_rows)


def mean_ks(x: Tensor, y: Tensor) -> Tensor:
    """(1/d) Σ_I sqrt(nm/(n+m)) sup_u |F_n^I(u) − G_m^I(u)|: x (R, n, d), y (R, m, d) → (R,) float64."""
    return ks_per_dimension(x, y).mean(dim=-1)
