"""Batched maximum-likelihood energy estimate with Δ(−2 log L) = 1 intervals (science spec §1).

For B showers and a conditional log-likelihood ℓ_b(z) = log p(x_b | z) over the model's allowed range
[z_min, z_max]:
1. a coarse scan on a log-spaced grid brackets each shower's global maximum;
2. a vectorized zoom refinement (m points per step inside every shower's bracket, keep the best
   point's neighbours) shrinks the bracket to `zoom_rtol`, then a parabola through the last three points
   places E_pred;
3. each crossing of −2ℓ(z) + 2ℓ(E_pred) = 1 is bracketed between E_pred and the nearest scan point
   beyond it where the difference is ≥ 1, then found by batched Illinois (regula falsi that always keeps
   the sign change; both sides of all showers in one tensor per step) down to `rtol`, with a final
   linear interpolation inside the last bracket — its accuracy is set by `rtol`, not by the grid.
Every step evaluates one (B, k) tensor of candidate energies, so it batches on CPU or GPU.
A maximum on the range boundary, or a crossing outside the range, is flagged per shower, never
silently extrapolated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: ℓ(z, rows): candidate energies z (b, k) for the showers `rows` (b,) (indices into the batch)
#: → log p(x_rows[i] | z_ik), shape (b, k).
LogLikelihood = Callable[[Tensor, Tensor], Tensor]

FLAG_AT_LOWER_EDGE = 1
FLAG_AT_UPPER_EDGE = 2
FLAG_NO_LOWER_CROSSING = 4
FLAG_NO_UPPER_CROSSING = 8
FLAG_NON_FINITE = 16


@dataclass(frozen=True)
class MLESettings:
    """Search settings. `n_scan` log-spaced scan points; `n_zoom` points per refinement step, until the
    bracket is `zoom_rtol` wide (then a parabola places the maximum); `rtol` the crossings' tolerance."""

    n_scan: int = 96
    n_zoom: int = 8
    rtol: float = 1e-7
    max_steps: int = 40
    zoom_rtol: float = 1e-4


@dataclass
class MLEResult:
    """Per-shower results, each (B,) float64 (flags int64), in the units of the candidate energies."""

    e_pred: Tensor
    z_lo: Tensor
    z_hi: Tensor
    log_likelihood_max: Tensor
    flags: Tensor

    @property
    def resolution(self) -> Tensor:
        """((E_pred − z_lo) + (z_hi − E_pred)) / 2; NaN when a crossing is missing."""
        return 0.5 * (self.z_hi - self.z_lo)

    @property
    def asymmetry(self) -> Tensor:
        """Δ_L / Δ_U with Δ_L = E_pred − z_lo, Δ_U = z_hi − E_pred; NaN when a crossing is missing."""
        return (self.e_pred - self.z_lo) / (self.z_hi - self.e_pred)


def _evaluate(log_likelihood: LogLikelihood, z: Tensor, rows: Tensor) -> Tensor:
    values = log_likelihood(z, rows).to(torch.float64)
    # Non-finite log-likelihoods (e.g. NaN from a broken input) are treated as impossible.
    return torch.where(torch.isfinite(values), values, torch.full_like(values, -torch.inf))


def _zoom_maximum(log_likelihood: LogLikelihood, rows: Tensor, lo: Tensor, hi: Tensor,
                  settings: MLESettings) -> tuple[Tensor, Tensor]:
    """Shrink per-shower brackets [lo, hi] around the maximum; returns (argmax, max)."""
    steps = torch.linspace(0.0, 1.0, settings.n_zoom + 2, dtype=torch.float64, device=lo.device)
    best_z, best_v = lo, torch.full_like(lo, -torch.inf)
    for _ in range(settings.max_steps):
        z = lo[:, None] + (hi - lo)[:, None] * steps[None, :]
        values = _evaluate(log_likelihood, z, rows)
        k = values.argmax(dim=1)
        at = torch.arange(len(lo), device=lo.device)
        best_z, best_v = z[at, k], values[at, k]
        k_lo = (k - 1).clamp(min=0)
        k_hi = (k + 1).clamp(max=steps.numel() - 1)
        new_lo, new_hi = z[at, k_lo], z[at, k_hi]
        if torch.all((new_hi - new_lo) <= settings.zoom_rtol * best_z.abs().clamp(min=1e-300)):
            # Parabola through (k−1, k, k+1) when all three exist: sub-step accuracy for free.
            inner = (k > 0) & (k < steps.numel() - 1)
            v_l, v_r = values[at, k_lo], values[at, k_hi]
            h = z[at, k_hi] - z[at, k]
            denom = v_l - 2 * best_v + v_r
            shift = torch.where(inner & (denom < 0), 0.5 * h * (v_l - v_r) / denom, torch.zeros_like(h))
            shifted = best_z + shift.clamp(-h, h)
            shifted_v = _evaluate(log_likelihood, shifted[:, None], rows)[:, 0]
            better = shifted_v > best_v
            return torch.where(better, shifted, best_z), torch.where(better, shifted_v, best_v)
        lo, hi = new_lo, new_hi
    return best_z, best_v


def _bracket_crossing(log_likelihood: LogLikelihood, rows: Tensor, inside: Tensor, outside: Tensor,
                      g_inside: Tensor, g_outside: Tensor, level: Tensor, settings: MLESettings) -> Tensor:
    """Root of g(z) = ℓ(z) − level between `inside` (g > 0) and `outside` (g ≤ 0), per shower.

    Batched Illinois (modified regula falsi): one candidate per shower and step, the bracket always
    keeps the sign change, and the retained end's value is halved when the same end survives twice,
    so convergence is superlinear and never leaves the bracket.
    """
    a, b, fa, fb = inside.clone(), outside.clone(), g_inside.clone(), g_outside.clone()
    true_fa, true_fb = fa.clone(), fb.clone()  # unmodified values, for the final interpolation
    side = torch.zeros_like(a)  # +1: a moved last, −1: b moved last
    for _ in range(settings.max_steps):
        denominator = fb - fa
        secant = b - fb * (b - a) / torch.where(denominator == 0, torch.full_like(denominator, -1.0), denominator)
        midpoint = 0.5 * (a + b)
        inner = torch.isfinite(secant) & (secant - torch.minimum(a, b) > 0) & (torch.maximum(a, b) - secant > 0)
        c = torch.where(inner & torch.isfinite(fb), secant, midpoint)
        fc = _evaluate(log_likelihood, c[:, None], rows)[:, 0] - level
        fc = torch.where(torch.isfinite(fc), fc, torch.full_like(fc, -1.0))
        keep_b = fc > 0  # c is inside: it replaces a
        fb = torch.where(keep_b & (side > 0), 0.5 * fb, fb)
        fa = torch.where(~keep_b & (side < 0), 0.5 * fa, fa)
        a, fa = torch.where(keep_b, c, a), torch.where(keep_b, fc, fa)
        b, fb = torch.where(keep_b, b, c), torch.where(keep_b, fb, fc)
        true_fa, true_fb = torch.where(keep_b, fc, true_fa), torch.where(keep_b, true_fb, fc)
        side = torch.where(keep_b, torch.ones_like(side), -torch.ones_like(side))
        if torch.all((b - a).abs() <= settings.rtol * c.abs().clamp(min=1e-300)):
            break
    # Linear interpolation inside the final bracket (true_fa > 0 ≥ true_fb).
    weight = (true_fa / (true_fa - true_fb)).clamp(0.0, 1.0)
    return a + torch.nan_to_num(weight, nan=0.5) * (b - a)


def find_mle(log_likelihood: LogLikelihood, n_showers: int, z_min: float, z_max: float,
             settings: MLESettings | None = None, device: torch.device | str = "cpu") -> MLEResult:
    """E_pred, z_lo, z_hi and flags for `n_showers` showers over the allowed range [z_min, z_max]."""
    settings = settings or MLESettings()
    if not 0 < z_min < z_max:
        raise ValueError(f"need 0 < z_min < z_max, got {z_min}, {z_max}")
    grid = torch.logspace(torch.log10(torch.tensor(z_min)), torch.log10(torch.tensor(z_max)), settings.n_scan,
                          dtype=torch.float64, device=device)
    grid[0], grid[-1] = z_min, z_max
    rows = torch.arange(n_showers, device=device)
    scan = _evaluate(log_likelihood, grid.expand(n_showers, -1).contiguous(), rows)
    k = scan.argmax(dim=1)
    lo = grid[(k - 1).clamp(min=0)]
    hi = grid[(k + 1).clamp(max=settings.n_scan - 1)]
    e_pred, l_max = _zoom_maximum(log_likelihood, rows, lo, hi, settings)

    flags = torch.zeros(n_showers, dtype=torch.int64, device=device)
    non_finite = ~torch.isfinite(l_max)
    flags |= non_finite.long() * FLAG_NON_FINITE
    span = settings.rtol * 10 * grid[-1]
    flags |= ((e_pred - z_min) <= span).long() * FLAG_AT_LOWER_EDGE
    flags |= ((z_max - e_pred) <= span).long() * FLAG_AT_UPPER_EDGE

    # Crossings of ℓ = ℓ_max − 1/2, i.e. Δ(−2 log L) = 1.
    level = l_max - 0.5
    far = scan <= level[:, None]
    below_pred = grid[None, :] < e_pred[:, None]
    above_pred = grid[None, :] > e_pred[:, None]
    idx = torch.arange(settings.n_scan, device=device).expand(n_showers, -1)
    lower_idx = torch.where(far & below_pred, idx, torch.full_like(idx, -1)).max(dim=1).values
    upper_idx = torch.where(far & above_pred, idx, torch.full_like(idx, settings.n_scan)).min(dim=1).values
    has_lower = (lower_idx >= 0) & ~non_finite
    has_upper = (upper_idx < settings.n_scan) & ~non_finite
    flags |= (~has_lower).long() * FLAG_NO_LOWER_CROSSING
    flags |= (~has_upper).long() * FLAG_NO_UPPER_CROSSING

    nan = torch.full_like(e_pred, torch.nan)
    z_lo, z_hi = nan.clone(), nan.clone()
    # Both sides in one batched search: rows of the lower crossings, then of the upper ones.
    lower = has_lower.nonzero().squeeze(1)
    upper = has_upper.nonzero().squeeze(1)
    sel = torch.cat([lower, upper])
    if sel.numel():
        far = torch.cat([lower_idx[lower], upper_idx[upper]])
        roots = _bracket_crossing(log_likelihood, sel, e_pred[sel], grid[far], torch.full_like(level[sel], 0.5),
                                  scan[sel, far] - level[sel], level[sel], settings)
        z_lo[lower], z_hi[upper] = roots[: lower.numel()], roots[lower.numel():]
    e_pred = torch.where(non_finite, nan, e_pred)
    return MLEResult(e_pred=e_pred, z_lo=z_lo, z_hi=z_hi, log_likelihood_max=l_max, flags=flags)
