"""Fréchet Gaussian distance (FGD) between Gaussian fits, and its 1/N → 0 extrapolation FGD∞."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from caloray.stats._shapes import as_replicate_pair

#: Subsample sizes for FGD∞ as fractions of min(n, m): five sizes from a third of the sample up to all of it.
FGD_INF_FRACTIONS: tuple[float, ...] = (1 / 3, 1 / 2, 2 / 3, 5 / 6, 1.0)
#: Independent random subsamples averaged at each size (spec §2: at least 10).
FGD_INF_DRAWS = 10
#: Fewest distinct subsample sizes the fit accepts (spec §2).
FGD_INF_MIN_SIZES = 5


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
    """Subsample sizes N_j = round(f_j · min(n, m)) used by FGD∞ (at least 2 rows, at least 5 distinct sizes)."""
    smallest = min(n, m)
    sizes = sorted({max(2, min(smallest, round(f * smallest))) for f in fractions})
    if len(sizes) < FGD_INF_MIN_SIZES:
        raise ValueError(f"FGD∞ needs at least {FGD_INF_MIN_SIZES} distinct subsample sizes, got {sizes} for n={n}, "
                         f"m={m} (fractions {list(fractions)})")
    return sizes


def _subsample_orders(rows: int, size: int, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """`n_draws` independent subsamples of `size` of range(rows) without replacement, (n_draws, size) int64;
    the whole sample in its own order when size == rows (every draw is then the same rows)."""
    if size == rows:
        return np.tile(np.arange(rows, dtype=np.int64), (n_draws, 1))
    return rng.permuted(np.tile(np.arange(rows, dtype=np.int64), (n_draws, 1)), axis=1)[:, :size]


def fgd_inf_draws(n: int, m: int, sizes: Sequence[int], seed: int, n_draws: int = FGD_INF_DRAWS
                  ) -> list[tuple[Tensor, Tensor]]:
    """The seeded subsamples of FGD∞: for size N_j, rows (n_draws, N_j) of x and (n_draws, N_j) of y.

    Draws are independent across sizes and draws (generator SeedSequence(seed, j)), the same for every
    replicate of a test, so a replicate's FGD∞ depends only on its rows and `seed`.
    """
    draws = []
    for j, size in enumerate(sizes):
        rng = np.random.default_rng([int(seed), j])
        x_rows = _subsample_orders(n, size, n_draws, rng)
        y_rows = _subsample_orders(m, size, n_draws, rng)
        draws.append((torch.from_numpy(x_rows), torch.from_numpy(y_rows)))
    return draws


def subsample_fgd(x: Tensor, y: Tensor, sizes: Sequence[int], seed: int, n_draws: int = FGD_INF_DRAWS) -> Tensor:
    """FGD of every subsample of `fgd_inf_draws`: x (R, n, d), y (R, m, d) → (R, J sizes, n_draws) float64.

    A size that takes both whole samples is evaluated once (all its draws are the same rows).
    """
    x, y = as_replicate_pair(x, y)
    out = torch.empty(x.shape[0], len(sizes), n_draws, dtype=torch.float64, device=x.device)
    for j, (x_rows, y_rows) in enumerate(fgd_inf_draws(x.shape[1], y.shape[1], sizes, seed, n_draws)):
        if sizes[j] == x.shape[1] == y.shape[1]:
            out[:, j, :] = fgd(x, y).unsqueeze(-1)
            continue
        for r in range(n_draws):  # one draw at a time: memory stays that of one FGD batch
            out[:, j, r] = fgd(x[:, x_rows[r].to(x.device)], y[:, y_rows[r].to(y.device)])
    return out


def nonnegative_line_fit(inverse_sizes: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares values ≈ a + b·u with a ≥ 0 and b ≥ 0: u (J,), values (R, J) → a (R,), b (R,).

    With two parameters the constrained optimum is the best feasible one of four face solutions
    (free, a = 0, b = 0, both 0): the optimum of a convex problem on the quadrant is the least-squares
    solution of the face it lies on, and no feasible point beats it.
    """
    u = inverse_sizes.to(torch.float64)
    v = values.to(torch.float64)
    u_mean, v_mean = u.mean(), v.mean(dim=-1)
    u_var = ((u - u_mean) ** 2).sum()
    slope_free = ((u - u_mean) * (v - v_mean.unsqueeze(-1))).sum(dim=-1) / u_var
    intercept_free = v_mean - slope_free * u_mean
    slope_origin = (v * u).sum(dim=-1) / (u * u).sum()
    zeros = torch.zeros_like(v_mean)
    faces = [  # (intercept, slope, feasible)
        (intercept_free, slope_free, (intercept_free >= 0) & (slope_free >= 0)),
        (zeros, slope_origin, slope_origin >= 0),
        (v_mean, zeros, v_mean >= 0),
        (zeros, zeros, torch.ones_like(v_mean, dtype=torch.bool)),
    ]
    intercepts = torch.stack([f[0] for f in faces], dim=-1)  # (R, 4)
    slopes = torch.stack([f[1] for f in faces], dim=-1)
    rss = ((v.unsqueeze(-2) - intercepts.unsqueeze(-1) - slopes.unsqueeze(-1) * u) ** 2).sum(dim=-1)
    rss = torch.where(torch.stack([f[2] for f in faces], dim=-1), rss, torch.full_like(rss, torch.inf))
    best = rss.argmin(dim=-1, keepdim=True)
    return intercepts.gather(-1, best).squeeze(-1), slopes.gather(-1, best).squeeze(-1)


@dataclass(frozen=True)
class FgdInfFit:
    """FGD∞ of R replicates: value = the fit's intercept (R,) (units of x squared), uncertainty (R,) its standard
    error from the draw-to-draw scatter, slope (R,) the 1/N coefficient, sizes (J,) and means (R, J) the points."""

    value: Tensor
    uncertainty: Tensor
    slope: Tensor
    sizes: list[int]
    means: Tensor


def fgd_inf_fit(x: Tensor, y: Tensor, seed: int = 0, fractions: Sequence[float] = FGD_INF_FRACTIONS,
                n_draws: int = FGD_INF_DRAWS) -> FgdInfFit:
    """FGD∞ (spec §2): mean FGD of `n_draws` independent subsamples at each size of `fgd_inf_sizes`, fitted by
    a + b/N with a, b ≥ 0; FGD∞ = a. x (R, n, d), y (R, m, d).

    The uncertainty is the standard error of the intercept over the draws: the unconstrained intercept is linear
    in the points, so fitting each draw's points alone gives n_draws independent intercepts whose standard
    deviation / sqrt(n_draws) is the seed-to-seed scatter of the estimate (the whole-sample point has none).
    It does not include the sampling noise of x and y themselves (compare replicates for that).
    """
    if n_draws < 2:
        raise ValueError(f"FGD∞ averages at least 2 draws per size (the spec asks for 10), got {n_draws}")
    x, y = as_replicate_pair(x, y)
    sizes = fgd_inf_sizes(x.shape[1], y.shape[1], fractions)
    per_draw = subsample_fgd(x, y, sizes, seed, n_draws)  # (R, J, k)
    means = per_draw.mean(dim=-1)
    inverse = torch.tensor([1.0 / s for s in sizes], dtype=torch.float64, device=means.device)
    value, slope = nonnegative_line_fit(inverse, means)
    draw_intercepts = extrapolate_to_infinite_n(sizes, per_draw.transpose(1, 2))  # (R, k)
    uncertainty = draw_intercepts.std(dim=-1) / n_draws**0.5
    return FgdInfFit(value, uncertainty, slope, sizes, means)


def extrapolate_to_infinite_n(sizes: Sequence[int], values: Tensor) -> Tensor:
    """Intercept a of the unconstrained least-squares line values ≈ a + b/N: values (..., J) at sizes (J,) → (...)."""
    inverse = torch.tensor([1.0 / s for s in sizes], dtype=torch.float64, device=values.device)
    design = torch.stack([torch.ones_like(inverse), inverse], dim=1)  # (J, 2)
    intercept_weights = torch.linalg.pinv(design)[0]  # row of the pseudo-inverse giving the intercept
    return values.to(torch.float64) @ intercept_weights


def fgd_inf(x: Tensor, y: Tensor, seed: int = 0, fractions: Sequence[float] = FGD_INF_FRACTIONS,
            n_draws: int = FGD_INF_DRAWS) -> Tensor:
    """FGD∞ value only (`fgd_inf_fit(...).value`): x (R, n, d), y (R, m, d) → (R,) float64."""
    return fgd_inf_fit(x, y, seed, fractions, n_draws).value
