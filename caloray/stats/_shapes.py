"""Shape helpers shared by the statistics: everything is batched over replicates as (R, n, d)."""

from __future__ import annotations

import torch
from torch import Tensor

#: Upper bound on the elements of one temporary working array (keeps peak memory ~ 0.5 GB per array).
WORK_ELEMENTS = 1 << 26


def as_replicates(x: Tensor) -> Tensor:
    """View `x` as (R, n, d): (n, d) becomes (1, n, d) and (n,) becomes (1, n, 1)."""
    if x.dim() == 1:
        return x.reshape(1, -1, 1)
    if x.dim() == 2:
        return x.unsqueeze(0)
    if x.dim() == 3:
        return x
    raise ValueError(f"expected a sample of shape (n,), (n, d) or (R, n, d), got {tuple(x.shape)}")


def as_replicate_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Both samples as (R, n, d) and (R, m, d); checks that R and d agree and that n, m >= 1."""
    x, y = as_replicates(x), as_replicates(y)
    if x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
        raise ValueError(f"samples disagree in replicates or dimension: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.shape[1] < 1 or y.shape[1] < 1:
        raise ValueError("each sample needs at least one row")
    if x.device != y.device:
        raise ValueError(f"samples live on different devices: {x.device} vs {y.device}")
    return x, y


def column_chunk(rows: int, columns: int, budget: int = WORK_ELEMENTS) -> int:
    """How many of `columns` columns of `rows` rows fit in one working array of `budget` elements."""
    return max(1, min(columns, budget // max(rows, 1)))


def ks_scale(n: int, m: int) -> float:
    """The KS prefactor sqrt(n m / (n + m))."""
    return (n * m / (n + m)) ** 0.5


def float64(x: Tensor) -> Tensor:
    """`x` as float64 (no copy when it already is)."""
    return x.to(torch.float64)
