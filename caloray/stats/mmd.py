"""Unbiased MMD² with the polynomial kernel k(x, y) = (xᵀy / d + 1)^4."""

from __future__ import annotations

import torch
from torch import Tensor

from caloray.stats._shapes import WORK_ELEMENTS, as_replicate_pair

KERNEL_DEGREE = 4


def polynomial_kernel(a: Tensor, b: Tensor) -> Tensor:
    """k(a_i, b_j) = (a_iᵀb_j / d + 1)^4 for a (R, n, d), b (R, m, d) → (R, n, m) float64."""
    d = a.shape[-1]
    return (torch.bmm(a.to(torch.float64), b.to(torch.float64).transpose(1, 2)) / d + 1.0) ** KERNEL_DEGREE


def _kernel_sum(a: Tensor, b: Tensor, budget: int) -> Tensor:
    """Σ_ij k(a_i, b_j) per replicate, (R,) float64, in row blocks of at most `budget` kernel entries."""
    replicates, n, m = a.shape[0], a.shape[1], b.shape[1]
    rows = max(1, budget // max(replicates * m, 1))
    total = torch.zeros(replicates, dtype=torch.float64, device=a.device)
    for start in range(0, n, rows):
        total += polynomial_kernel(a[:, start : start + rows], b).sum(dim=(1, 2))
    return total


def _diagonal_sum(a: Tensor) -> Tensor:
    """Σ_i k(a_i, a_i) per replicate, (R,) float64."""
    a = a.to(torch.float64)
    return ((a * a).sum(dim=-1) / a.shape[-1] + 1.0).pow(KERNEL_DEGREE).sum(dim=-1)


def mmd_polynomial(x: Tensor, y: Tensor, budget: int = WORK_ELEMENTS) -> Tensor:
    """Unbiased MMD² estimate, x (R, n, d), y (R, m, d) with n, m >= 2 → (R,) float64.

    1/(n(n−1)) Σ_{i≠j} k(x_i,x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i,y_j) − 2/(nm) Σ_ij k(x_i,y_j).
    Memory is bounded by computing the kernel matrices in row blocks of `budget` entries.
    """
    x, y = as_replicate_pair(x, y)
    n, m = x.shape[1], y.shape[1]
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 rows per sample, got n={n}, m={m}")
    xx = (_kernel_sum(x, x, budget) - _diagonal_sum(x)) / (n * (n - 1))
    yy = (_kernel_sum(y, y, budget) - _diagonal_sum(y)) / (m * (m - 1))
    xy = _kernel_sum(x, y, budget) / (n * m)
    return xx + yy - 2.0 * xy
