"""Log-likelihood-ratio statistic for the case where both densities are known."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from caloray.stats._shapes import as_replicates

#: log density: points (..., d) → log p (...), in natural log.
LogDensity = Callable[[Tensor], Tensor]


def log_likelihood_ratio(y: Tensor, log_p: LogDensity, log_q: LogDensity) -> Tensor:
    """t_LLR = −2 Σ_{y∈Y} log(p(y)/q(y)), p the reference density, q the candidate's: y (R, m, d) → (R,).

    Large when Y looks like q rather than p. Only the candidate sample enters (the reference terms
    cancel in the ratio Λ = L(H0)/L(H1)).
    """
    y = as_replicates(y)
    return -2.0 * (log_p(y).to(torch.float64) - log_q(y).to(torch.float64)).sum(dim=-1)
