"""Two-sample test statistics in torch, batched over replicates: x (R, n, d), y (R, m, d) → (R,) float64.

`STATISTICS` maps names ("mean-ks", "sks", "swd", "mmd", "fgd", "fgd-inf", "llr") to callables with one
signature; `caloray.stats.numpy_api` has numpy-in/numpy-out versions. Definitions: spec/science.md §2.
"""

from caloray.stats.ecdf import ks_sup_rows, wasserstein1_rows
from caloray.stats.frechet import fgd, fgd_inf, frechet_distance, gaussian_fit
from caloray.stats.ks import ks_per_dimension, mean_ks
from caloray.stats.llr import LogDensity, log_likelihood_ratio
from caloray.stats.mmd import mmd_polynomial, polynomial_kernel
from caloray.stats.projections import project, random_directions
from caloray.stats.registry import STATISTICS, Statistic, StatisticContext, get_statistic
from caloray.stats.sliced import sliced_ks, sliced_wasserstein

__all__ = [
    "STATISTICS",
    "LogDensity",
    "Statistic",
    "StatisticContext",
    "fgd",
    "fgd_inf",
    "frechet_distance",
    "gaussian_fit",
    "get_statistic",
    "ks_per_dimension",
    "ks_sup_rows",
    "log_likelihood_ratio",
    "mean_ks",
    "mmd_polynomial",
    "polynomial_kernel",
    "project",
    "random_directions",
    "sliced_ks",
    "sliced_wasserstein",
    "wasserstein1_rows",
]
