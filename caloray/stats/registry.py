"""Statistics by name, behind one signature: statistic(x (R,n,d), y (R,m,d), context) → (R,) float64."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from caloray.stats.frechet import FGD_INF_DRAWS, FGD_INF_FRACTIONS, fgd, fgd_inf
from caloray.stats.ks import mean_ks
from caloray.stats.llr import LogDensity, log_likelihood_ratio
from caloray.stats.mmd import mmd_polynomial
from caloray.stats.projections import random_directions
from caloray.stats.sliced import sliced_ks, sliced_wasserstein


@dataclass(frozen=True)
class StatisticContext:
    """Fixed inputs shared by all replicates of one test.

    directions: (d, K) unit vectors for "sks"/"swd" (drawn once, reused by every replicate).
    fgd_seed, fgd_fractions, fgd_draws: subsampling of "fgd-inf" (see `caloray.stats.frechet.fgd_inf_fit`).
    log_p, log_q: reference and candidate log densities for "llr" (must be picklable for Ray).
    """

    directions: Tensor | None = None
    fgd_seed: int = 0
    fgd_fractions: tuple[float, ...] = FGD_INF_FRACTIONS
    fgd_draws: int = FGD_INF_DRAWS
    log_p: LogDensity | None = None
    log_q: LogDensity | None = None

    @classmethod
    def for_dimension(
        cls,
        d: int,
        n_slices: int,
        seed: int,
        log_p: LogDensity | None = None,
        log_q: LogDensity | None = None,
    ) -> StatisticContext:
        """Context for d-dimensional features: `n_slices` directions and FGD∞ subsampling from `seed`."""
        return cls(directions=random_directions(d, n_slices, seed), fgd_seed=seed, log_p=log_p, log_q=log_q)


Statistic = Callable[[Tensor, Tensor, StatisticContext], Tensor]


def _directions(context: StatisticContext) -> Tensor:
    if context.directions is None:
        raise ValueError("sliced statistics need StatisticContext.directions (use for_dimension)")
    return context.directions


def _mean_ks(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    return mean_ks(x, y)


def _sks(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    return sliced_ks(x, y, _directions(context))


def _swd(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    return sliced_wasserstein(x, y, _directions(context))


def _mmd(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    return mmd_polynomial(x, y)


def _fgd(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    return fgd(x, y)


def _fgd_inf(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    return fgd_inf(x, y, seed=context.fgd_seed, fractions=context.fgd_fractions, n_draws=context.fgd_draws)


def _llr(x: Tensor, y: Tensor, context: StatisticContext) -> Tensor:
    if context.log_p is None or context.log_q is None:
        raise ValueError("'llr' needs both densities: StatisticContext(log_p=..., log_q=...)")
    return log_likelihood_ratio(y, context.log_p, context.log_q)


#: name → statistic(x, y, context); every entry returns (R,) float64 and grows with the discrepancy.
STATISTICS: dict[str, Statistic] = {
    "mean-ks": _mean_ks,
    "sks": _sks,
    "swd": _swd,
    "mmd": _mmd,
    "fgd": _fgd,
    "fgd-inf": _fgd_inf,
    "llr": _llr,
}


def get_statistic(name: str) -> Statistic:
    """The registered statistic called `name`; unknown names raise ValueError listing the valid ones."""
    try:
        return STATISTICS[name]
    except KeyError:
        raise ValueError(f"unknown statistic {name!r}; valid: {', '.join(STATISTICS)}") from None
