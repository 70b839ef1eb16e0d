"""Fréchet Gaussian distance (FGD) between Gaussian fits, and its 1/N → 0 extrapolation FGD∞."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from caloray.stats._shapes import as_replicate_pair

#: Default subsample sizes for FGD∞, as fractions of min(n, m).
FGD_INF_FRACTIONS: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)


def gaussian_fit(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (R, d) and unbiased covariance (ddof = 1) (R, d, d) of x (R, n, d), float64."""
    x = x.to(torch.float64)
    mean = x.mean(dim=1)
    centred = x - mean.unsqueeze(1)
    return mean, centred.transpose(1, 2) @ centred / (x.shape[1] - 1)


def _trace_sqrt_product(s1: Tensor, s2: Tensor) -> Tensor:
    """tr sqrt(Σ1 Σ2) for symmetric PSD Σ1, Σ2 (R, d, d) via the symmetric sqrt(Σ1) Σ2 sqrt(Σ1)."""
    w1, v1 = torch.linalg.eigh(s1)
    root1 = (v1 * w1.clamp(min=0).sqrt().unsqueeze(-2)) @ v1.transpose(-1, -2)
    inner = root1 @ s2 @ root1
    inner = (inner + inner.transpose(-1, -2)) / 2
    return torch.linalg.eigvalsh(inner).clamp(min=0).sqrt().sum(dim=-1)


def frechet_distance(mean1: Tensor, cov1: Tensor, mean2: Tensor, cov2: Tensor) -> Tensor:
    """|μ1 − μ2|² + tr(Σ1 + Σ2 − 2 sqrt(Σ1 Σ2)) for batched Gaussians: means (R, d), covs (R, d, d)."""
    diff = ((mean1 - mean2) ** 2).sum(dim=-1)
    traces = torch.diagonal(cov1, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(cov2, dim1=-2, dim2=-1).sum(-1)
    return diff + traces - 2.0 * _trace_sqrt_product(cov1, cov2)


def fgd(x: Tensor, y: Tensor) -> Tensor:
    """FGD between Gaussian fits of x (R, n, d) and y (R, m, d) → (R,) float64, units of x squared."""
    x, y = as_replicate_pair(x, y)
    if x.shape[1] < 2 or y.shape[1] < 2:
        raise ValueError("FGD needs at least 2 rows per sample")
    return frechet_distance(*gaussian_fit(x), *gaussian_fit(y))


def fgd_inf_sizes(n: int, m: int, fractions: Sequence[float] = FGD_INF_FRACTIONS) -> list[int]:
    """Subsample sizes N_j = round(f_j · min(n, m)) used by FGD∞ (at least 2 rows, all distinct)."""
    smallest = min(n, m)
    sizes = sorted({max(2, min(smallest, round(f * smallest))) for f in fractions})
    if len(sizes) < 2:
        raise ValueError(f"FGD∞ needs at least 2 distinct subsample sizes, got {sizes} for n={n}, m={m}")
    return sizes


def fgd_inf_rows(n: int, m: int, seed: int) -> tuple[Tensor, Tensor]:
    """The seeded row orders used for subsampling: a permutation of range(n) and one of range(m).

    Subsample N_j takes the first N_j rows of each order (nested subsamples without replacement),
    identical for every replicate of a test.
    """
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=generator), torch.randperm(m, generator=generator)


def extrapolate_to_infinite_n(sizes: Sequence[int], values: Tensor) -> Tensor:
    """Intercept a of the least-squares line values ≈ a + b/N: values (R, J) at sizes (J,) → (R,)."""
    inverse = torch.tensor([1.0 / s for s in sizes], dtype=torch.float64, device=values.device)
    design = torch.stack([torch.ones_like(inverse), inverse], dim=1)  # (J, 2)
    intercept_weights = torch.linalg.pinv(design)[0]  # row of the pseudo-inverse giving the intercept
    return values.to(torch.float64) @ intercept_weights


def fgd_inf(x: Tensor, y: Tensor, seed: int = 0, fractions: Sequence[float] = FGD_INF_FRACTIONS) -> Tensor:
    """FGD∞: FGD on nested subsamples of sizes `fgd_inf_sizes`, fitted linearly in 1/N, value at 1/N = 0.

    x (R, n, d), y (R, m, d) → (R,) float64. Subsample rows come from `fgd_inf_rows(n, m, seed)`.
    """
    x, y = as_replicate_pair(x, y)
    sizes = fgd_inf_sizes(x.shape[1], y.shape[1], fractions)
    order_x, order_y = (o.to(x.device) for o in fgd_inf_rows(x.shape[1], y.shape[1], seed))
    values = torch.stack([fgd(x[:, order_x[:size]], y[:, order_y[:size]]) for size in sizes], dim=1)
    return extrapolate_to_infinite_n(sizes, values)
