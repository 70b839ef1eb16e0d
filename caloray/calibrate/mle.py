"""Batched maximum-likelihood energy estimate with Δ(−2 log L) = 1 intervals (science spec §1).

For B showers and a conditional log-likelihood ℓ_b(z) = log p(x_b | z) over the model's allowed range
[z_min, z_max], all searches run in u = ln z (so tolerances are relative in z):
1. a coarse scan of `n_scan` log-spaced points brackets each shower's global maximum between the scan
   neighbours of its best point;
2. safeguarded Newton steps on ℓ(u) refine the maximum: each step evaluates a 3-point stencil
   (u − h, u, u + h) whose half-width h follows the last step (down to `stencil`), takes the vertex of the
   parabola through it (a Newton step with finite-difference derivatives), shrinks the bracket with the
   stencil's slopes and falls back to the bracket's midpoint (or its end on the range boundary) when the
   vertex leaves the bracket or ℓ is not concave there. Converged showers leave the batch;
3. each crossing of −2ℓ(z) + 2ℓ(E_pred) = 1 is bracketed between E_pred and the nearest scan point beyond
   it where the difference is ≥ 1; the first candidate is the Gaussian guess u* ± 1/sqrt(−ℓ''), then
   batched Illinois (regula falsi that always keeps the sign change) down to `rtol`, with a final linear
   interpolation inside the last bracket.
Every step evaluates one (b, k) tensor of candidate energies for the b showers still active, so it batches
on CPU or GPU; about n_scan + 30 likelihood evaluations per shower in total (56.5 at n_scan = 24 on a
10-member Flow-I ensemble, bench/bench_calibrate.py), against 1600 for a fixed grid.
A maximum on the range boundary, or a crossing outside the range, is flagged per shower, never
silently extrapolated; the at-edge test is local (relative to the edge itself).
"""

from __future__ import annotations

import math
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

#: Stencil floor (in ln z) for likelihoods computed in float32: their rounding noise δℓ ~ 1e-5 moves a
#: finite-difference slope by δℓ/h and makes value comparisons meaningless below δu ~ sqrt(2δℓ/|ℓ''|), so
#: the stencil and the bracket stop near 1e-3 (tests/calibrate/test_flow_calibration.py: float32 and float64 E_pred
#: and crossings agree within the spec's 0.1%).
FLOAT32_STENCIL = 1e-3


@dataclass(frozen=True)
class MLESettings:
    """Search settings. `n_scan` log-spaced scan points; `rtol` the relative tolerance of E_pred and of the
    crossings; `max_steps` per refinement; `stencil` the smallest half-width of the Newton stencil in ln z
    (None: 1e-5, or `FLOAT32_STENCIL` when the engine evaluates a float32 model)."""

    n_scan: int = 24
    rtol: float = 1e-7
    max_steps: int = 40
    stencil: float | None = None


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


class _LogSpace:
    """ℓ as a function of u = ln z, with z clamped to the range so that edge points are exact."""

    def __init__(self, log_likelihood: LogLikelihood, z_min: float, z_max: float) -> None:
        self.log_likelihood = log_likelihood
        self.z_min, self.z_max = z_min, z_max
        self.evaluations = 0  # candidate energies evaluated, for the benchmark

    def z(self, u: Tensor) -> Tensor:
        return u.exp().clamp(self.z_min, self.z_max)

    def __call__(self, u: Tensor, rows: Tensor) -> Tensor:
        self.evaluations += u.numel()
        values = self.log_likelihood(self.z(u), rows).to(torch.float64)
        # Non-finite log-likelihoods (e.g. NaN from a broken input) are treated as impossible.
        return torch.where(torch.isfinite(values), values, torch.full_like(values, -torch.inf))


def _newton_maximum(ell: _LogSpace, rows: Tensor, start: Tensor, lo: Tensor, hi: Tensor, u_min: float,
                    u_max: float, h_start: float, settings: MLESettings,
                    h_min: float) -> tuple[Tensor, Tensor, Tensor]:
    """Safeguarded stencil-Newton maximization of ℓ(u) inside [lo, hi] per shower.

    Returns (u*, ℓ(u*), ℓ''(u*)) (B,); ℓ'' is the last stencil's curvature (NaN if never concave).
    """
    u, h = start.clone(), torch.full_like(start, h_start)
    curvature = torch.full_like(start, torch.nan)
    active = torch.arange(len(start), device=start.device)
    for _ in range(settings.max_steps):
        if active.numel() == 0:
            break
        c0, h0, a, b = u[active], h[active], lo[active], hi[active]
        # The stencil stays inside the range: the model is only evaluated on allowed energies.
        h0 = torch.minimum(h0, torch.full_like(h0, 0.25 * (u_max - u_min)))
        c = c0.clamp(u_min + h0, u_max - h0)
        v = ell(torch.stack([c - h0, c, c + h0], dim=1), rows[active])
        v_m, v_0, v_p = v.unbind(1)
        # Bracket update, valid for a unimodal ℓ inside the bracket: a lower side point lies left of the max.
        a = torch.where(v_m < v_0, torch.maximum(a, c - h0), a)
        b = torch.where(v_p < v_0, torch.minimum(b, c + h0), b)
        a = torch.where(v_p > v_0, torch.maximum(a, c), a)
        b = torch.where(v_m > v_0, torch.minimum(b, c), b)
        slope = (v_p - v_m) / (2 * h0)
        d2 = (v_p - 2 * v_0 + v_m) / (h0 * h0)
        concave = torch.isfinite(d2) & (d2 < 0)
        vertex = torch.where(concave, c - slope / torch.where(concave, d2, -torch.ones_like(d2)), torch.nan)
        inside = (vertex > a) & (vertex < b)
        # Otherwise: to the bracket end when ℓ rises towards it and it is the range boundary (a boundary
        # maximum is reached in one step), else bisect the bracket (e.g. a straight piece of a ReLU network).
        to_lower = (slope < 0) & (a <= u_min) & ~(concave & (vertex > a))
        to_upper = (slope > 0) & (b >= u_max) & ~(concave & (vertex < b))
        new = torch.where(inside, vertex, torch.where(to_lower, a, torch.where(to_upper, b, 0.5 * (a + b))))
        new = torch.where(torch.isfinite(new), new, c)
        step = (new - c0).abs()
        curvature[active] = torch.where(concave, d2, curvature[active])
        u[active], lo[active], hi[active] = new, a, b
        # The next stencil spans at least an eighth of the bracket: ℓ of a ReLU network is piecewise smooth,
        # and near a kink a tiny stencil's curvature is meaningless, while one across the bracket still
        # shrinks it (both sides lower: to 2h) at every step.
        h[active] = torch.maximum(step, 0.125 * (b - a)).clamp(min=h_min, max=h_start)
        # A vertex is only as good as its stencil (error ∝ h²): stop on a small step from a narrow stencil,
        # or once the bracket is as narrow as the stencil floor (the likelihood's precision) allows.
        narrow = h0 <= max(1.001 * h_min, 0.1 * math.sqrt(settings.rtol))
        done = (((step <= settings.rtol) & narrow) | (b - a <= max(settings.rtol, 2 * h_min))
                | ~torch.isfinite(v_0))
        active = active[~done]
    value = ell(u[:, None], rows)[:, 0]
    return u, value, curvature


def _illinois_crossing(ell: _LogSpace, rows: Tensor, inside: Tensor, outside: Tensor, g_outside: Tensor,
                       first: Tensor, level: Tensor, settings: MLESettings) -> Tensor:
    """Root of g(u) = ℓ(u) − level between `inside` (g = 0.5 > 0, the maximum) and `outside` (g ≤ 0).

    `first` is the first candidate (used where it lies strictly inside the bracket). Batched Illinois
    (modified regula falsi): one candidate per shower and step, the bracket always keeps the sign change,
    and the retained end's value is halved when the same end survives twice. Converged showers leave.
    """
    a, b = inside.clone(), outside.clone()
    fa, fb = torch.full_like(a, 0.5), g_outside.clone()
    true_fa, true_fb = fa.clone(), fb.clone()  # unmodified values, for the final interpolation
    side = torch.zeros_like(a)  # +1: a moved last, −1: b moved last
    active = torch.arange(len(a), device=a.device)
    for step in range(settings.max_steps):
        if active.numel() == 0:
            break
        a_, b_, fa_, fb_, s_ = a[active], b[active], fa[active], fb[active], side[active]
        denominator = fb_ - fa_
        secant = b_ - fb_ * (b_ - a_) / torch.where(denominator == 0, torch.full_like(denominator, -1.0), denominator)
        midpoint = 0.5 * (a_ + b_)
        low, high = torch.minimum(a_, b_), torch.maximum(a_, b_)
        inner = torch.isfinite(secant) & (secant > low) & (secant < high)
        c = torch.where(inner & torch.isfinite(fb_), secant, midpoint)
        if step == 0:
            guess = first[active]
            c = torch.where(torch.isfinite(guess) & (guess > low) & (guess < high), guess, c)
        fc = ell(c[:, None], rows[active])[:, 0] - level[active]
        fc = torch.where(torch.isfinite(fc), fc, torch.full_like(fc, -1.0))
        keep_b = fc > 0  # c is inside: it replaces a
        fb_ = torch.where(keep_b & (s_ > 0), 0.5 * fb_, fb_)
        fa_ = torch.where(~keep_b & (s_ < 0), 0.5 * fa_, fa_)
        a[active], fa[active] = torch.where(keep_b, c, a_), torch.where(keep_b, fc, fa_)
        b[active], fb[active] = torch.where(keep_b, b_, c), torch.where(keep_b, fb_, fc)
        true_fa[active] = torch.where(keep_b, fc, true_fa[active])
        true_fb[active] = torch.where(keep_b, true_fb[active], fc)
        side[active] = torch.where(keep_b, torch.ones_like(s_), -torch.ones_like(s_))
        done = ((b[active] - a[active]).abs() <= settings.rtol) | (fc == 0)
        active = active[~done]
    # Linear interpolation inside the final bracket (true_fa > 0 ≥ true_fb).
    weight = (true_fa / (true_fa - true_fb)).clamp(0.0, 1.0)
    return a + torch.nan_to_num(weight, nan=0.5) * (b - a)


def find_mle(log_likelihood: LogLikelihood, n_showers: int, z_min: float, z_max: float,
             settings: MLESettings | None = None, device: torch.device | str = "cpu") -> MLEResult:
    """E_pred, z_lo, z_hi and flags for `n_showers` showers over the allowed range [z_min, z_max]."""
    settings = settings or MLESettings()
    if not 0 < z_min < z_max:
        raise ValueError(f"need 0 < z_min < z_max, got {z_min}, {z_max}")
    if settings.n_scan < 3:
        raise ValueError(f"need n_scan >= 3, got {settings.n_scan}")
    ell = _LogSpace(log_likelihood, z_min, z_max)
    u_min, u_max = math.log(z_min), math.log(z_max)
    grid = torch.linspace(u_min, u_max, settings.n_scan, dtype=torch.float64, device=device)
    grid[0], grid[-1] = u_min, u_max  # exact ends: the boundary tests below compare against them
    spacing = (u_max - u_min) / (settings.n_scan - 1)
    rows = torch.arange(n_showers, device=device)
    scan = ell(grid.expand(n_showers, -1).contiguous(), rows)
    k = scan.argmax(dim=1)
    lo = grid[(k - 1).clamp(min=0)]
    hi = grid[(k + 1).clamp(max=settings.n_scan - 1)]
    h_min = settings.stencil if settings.stencil is not None else 1e-5
    u_pred, l_max, curvature = _newton_maximum(ell, rows, grid[k], lo, hi, u_min, u_max, 0.25 * spacing, settings,
                                               h_min)
    # The best scan point wins should refinement have lost it (e.g. a kink the parabola cannot see).
    better = scan[rows, k] > l_max
    u_pred, l_max = torch.where(better, grid[k], u_pred), torch.where(better, scan[rows, k], l_max)
    e_pred = ell.z(u_pred)

    flags = torch.zeros(n_showers, dtype=torch.int64, device=device)
    non_finite = ~torch.isfinite(l_max)
    flags |= non_finite.long() * FLAG_NON_FINITE
    # Local edge test: within 10·rtol (relative, i.e. in u) of the edge itself.
    edge = 10 * settings.rtol
    flags |= (u_pred - u_min <= edge).long() * FLAG_AT_LOWER_EDGE
    flags |= (u_max - u_pred <= edge).long() * FLAG_AT_UPPER_EDGE

    # Crossings of ℓ = ℓ_max − 1/2, i.e. Δ(−2 log L) = 1.
    level = l_max - 0.5
    far = scan <= level[:, None]
    below_pred = grid[None, :] < u_pred[:, None]
    above_pred = grid[None, :] > u_pred[:, None]
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
        far_idx = torch.cat([lower_idx[lower], upper_idx[upper]])
        sign = torch.cat([-torch.ones_like(lower, dtype=torch.float64), torch.ones_like(upper, dtype=torch.float64)])
        # Gaussian guess: ℓ ≈ ℓ_max + ½ℓ''(u − u*)² crosses the level at u* ± 1/sqrt(−ℓ'').
        width = (-curvature[sel]).clamp(min=0).rsqrt()
        roots = _illinois_crossing(ell, sel, u_pred[sel], grid[far_idx], scan[sel, far_idx] - level[sel],
                                   u_pred[sel] + sign * width, level[sel], settings)
        z_lo[lower], z_hi[upper] = ell.z(roots[: lower.numel()]), ell.z(roots[lower.numel():])
    e_pred = torch.where(non_finite, nan, e_pred)
    return MLEResult(e_pred=e_pred, z_lo=z_lo, z_hi=z_hi, log_likelihood_max=l_max, flags=flags)
