"""Monotonic rational-quadratic splines (zuko's `MonotonicRQSTransform` parametrization), evaluated directly.

Pure, element-wise functions on packed spline parameters: zuko builds one transform object per call and
computes the bin sizes with `softmax` over 8 bins of strided views, which dominates the cost of small flows
on CPU. Here the soft clip and the exponential run once over the packed parameters, the normalisations are
explicit sums, and the bin lookup is a comparison count (no `searchsorted`). Same formulas as zuko; the tests
in `tests/models/test_models_rqs.py` compare both directions and the log-determinant with zuko.
"""

from __future__ import annotations

import inspect
import math
from functools import partial

import torch
from torch import Tensor
from zuko.transforms import MonotonicRQSTransform


def zuko_spline_settings(univariate: object) -> tuple[float, float] | None:
    """(bound, slope) of a `partial(MonotonicRQSTransform, ...)` univariate, else None."""
    func = univariate.func if isinstance(univariate, partial) else univariate
    if func is not MonotonicRQSTransform or (isinstance(univariate, partial) and univariate.args):
        return None
    defaults = inspect.signature(MonotonicRQSTransform).parameters
    keywords = univariate.keywords if isinstance(univariate, partial) else {}
    return (float(keywords.get("bound", defaults["bound"].default)),
            float(keywords.get("slope", defaults["slope"].default)))


def rqs_knots(phi: Tensor, bins: int, bound: float, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """Knots of the spline from packed parameters phi (..., D, 3·bins − 1) (widths, heights, interior slopes).

    Returns (knots_x, knots_y, slopes), each (..., D, bins + 1): the knot positions on [−bound, bound] and the
    derivatives at the knots (1 at the bounds). The soft clip keeps |w| < |log slope| / 2, so the exponential of
    the bin sizes needs no max subtraction.
    """
    log_slope = abs(math.log(slope))
    scale = phi.new_full((phi.shape[-1],), 2 / log_slope)
    scale[2 * bins:] = 1 / log_slope
    packed = (phi / (1 + (phi * scale).abs())).exp()
    widths, heights, inner_slopes = packed.split([bins, bins, bins - 1], dim=-1)
    pad = torch.nn.functional.pad
    knots_x = pad(widths.cumsum(-1), (1, 0))
    knots_x = knots_x * ((2 * bound) / knots_x[..., -1:]) - bound
    knots_y = pad(heights.cumsum(-1), (1, 0))
    knots_y = knots_y * ((2 * bound) / knots_y[..., -1:]) - bound
    slopes = pad(inner_slopes, (1, 1), value=1.0)
    return knots_x, knots_y, slopes


def _bin(knots: Tensor, values: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """(k (..., D, 1) bin index clamped to [0, bins − 1], k + 1, inside (..., D)) of values (..., D)."""
    k = (knots < values[..., None]).sum(-1, keepdim=True) - 1
    inside = ((k >= 0) & (k < bins)).squeeze(-1)
    k = k.clamp(0, bins - 1)
    return k, k + 1, inside


def _gather_bin(knots_x: Tensor, knots_y: Tensor, slopes: Tensor, k: Tensor, k1: Tensor) -> list[Tensor]:
    """[x0, x1, y0, y1, d0, d1], each (..., D): the knots and derivatives bounding bin k."""
    return [t.gather(-1, i).squeeze(-1) for t in (knots_x, knots_y, slopes) for i in (k, k1)]


def rqs_call_and_ladj(x: Tensor, phi: Tensor, bins: int, bound: float, slope: float) -> tuple[Tensor, Tensor]:
    """Forward spline on [−bound, bound] (identity outside), element-wise.

    x (..., D); phi (..., D, 3·bins − 1) as in `rqs_knots`. Returns (y (..., D), log|dy/dx| summed over D (...)).
    """
    knots_x, knots_y, slopes = rqs_knots(phi, bins, bound, slope)
    k, k1, inside = _bin(knots_x, x, bins)
    x0, x1, y0, y1, d0, d1 = _gather_bin(knots_x, knots_y, slopes, k, k1)
    inverse_width = 1 / (x1 - x0)
    s = (y1 - y0) * inverse_width
    z = torch.where(inside, (x - x0) * inverse_width, torch.zeros_like(x))
    zz = z * (1 - z)
    inverse_denominator = 1 / (s + (d0 + d1 - 2 * s) * zz)
    y = y0 + (y1 - y0) * (s * z * z + d0 * zz) * inverse_denominator
    jacobian = s * s * (2 * s * zz + d0 * (1 - z) ** 2 + d1 * z * z) * inverse_denominator * inverse_denominator
    ladj = torch.where(inside, jacobian.log(), torch.zeros_like(x))
    return torch.where(inside, y, x), ladj.sum(-1)


def rqs_inverse(y: Tensor, phi: Tensor, bins: int, bound: float, slope: float) -> Tensor:
    """Inverse spline x (..., D) of y (..., D) (identity outside [−bound, bound]); phi as in `rqs_knots`.

    Reorders phi bins-first and calls `rqs_inverse_bins_first_` on that copy (callers that can produce the
    parameters bins-first, like `coupling_flow.coupling_sample`, call it directly)."""
    packed = phi.movedim(-1, 0).reshape(phi.shape[-1], -1).clone()
    return rqs_inverse_bins_first_(y.reshape(-1), packed, bins, bound, slope).view(y.shape)


def rqs_inverse_bins_first_(y: Tensor, phi: Tensor, bins: int, bound: float, slope: float) -> Tensor:
    """Inverse spline x (N,) of y (N,) (identity outside [−bound, bound]) with the packed parameters bins-first,
    phi (3·bins − 1, N): rows 0…bins − 1 the widths, then the heights, then the interior slopes (as `rqs_knots`).
    Overwrites phi (the trailing underscore; it is scratch space).

    The same function as `rqs_knots` + the segment's inverse, evaluated so that every step is a pass over
    contiguous rows of N values (an inner dimension of size `bins` makes cumsum, comparisons and gathers slow)
    and only what the inverse needs is computed: the running sums of the exponentiated widths and heights stay
    unnormalized (y is mapped onto the heights' scale to find its bin, and only the bin's knots are normalized),
    and only the two derivatives bounding each bin are evaluated. The quadratic of the segment is solved in the
    stable form 2c / (−b − √(b² − 4ac)).
    """
    n = y.shape[0]
    log_slope = abs(math.log(slope))
    sizes = phi[: 2 * bins]
    denominator = sizes.abs()
    sizes.div_(denominator.mul_(2 / log_slope).add_(1)).exp_()  # soft clip, then bin sizes up to a factor
    running = torch.cumsum(sizes.view(2, bins, n), 1, out=denominator.view(2, bins, n))  # (2, bins, N)
    x_scale = (2 * bound) / running[0, -1]
    y_scale = (2 * bound) / running[1, -1]
    y_unnormalized = (y + bound).div_(y_scale)
    # Bin k (1, N): the number of interior knots below y, y in (knot_k, knot_k+1].
    k = (running[1, :-1] < y_unnormalized).sum(0, keepdim=True)
    knot_sum = running.gather(1, k.expand(2, 1, n)).squeeze(1)  # (2, N): Σ_{j≤k} of widths, heights
    size = sizes.view(2, bins, n).gather(1, k.expand(2, 1, n)).squeeze(1)  # (2, N): bin k's width, height
    width, height = size[0] * x_scale, size[1] * y_scale
    x0 = (knot_sum[0] - size[0]).mul_(x_scale).sub_(bound)
    shifted = (y_unnormalized - knot_sum[1]).add_(size[1]).mul_(y_scale)  # y − y0
    # Derivatives at knots k and k + 1: interior slope rows k − 1 and k, exactly 1 at the bounds.
    row = k + torch.tensor([[-1], [0]], device=k.device)  # (2, N)
    clamped = row.clamp(0, bins - 2)
    derivative = phi[2 * bins:].gather(0, clamped)
    denominator = derivative.abs().mul_(1 / log_slope).add_(1)
    derivative = derivative.div_(denominator).exp_().masked_fill_(row != clamped, 1.0)
    d0, d1 = derivative[0], derivative[1]
    s = height / width
    curvature = (d0 + d1).sub_(2 * s)
    a = (s - d0).mul_(height).add_(shifted * curvature)
    b = (height * d0).sub_(shifted * curvature)
    c = (s * shifted).neg_()
    # b² − 4ac ≥ 0 exactly (the segment is monotonic); the clamp only stops float32 rounding from giving NaN.
    root = (b * b).sub_(4 * a * c).clamp_min_(0).sqrt_()
    x = (2 * c).div_(b.add_(root).neg_()).mul_(width).add_(x0)
    inside = (y > -bound) & (y <= bound)
    return x if bool(inside.all()) else torch.where(inside, x, y)
