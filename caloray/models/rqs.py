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

    Copies phi into an `InverseSplineWorkspace` (callers that can write the parameters there directly, like
    `coupling_flow.coupling_sample`, keep one)."""
    workspace = InverseSplineWorkspace(bins, bound, slope, y.numel(), phi)
    packed = phi.movedim(-1, 0).reshape(phi.shape[-1], y.numel())
    workspace.sizes.copy_(packed[: 2 * bins])
    workspace.slopes.copy_(packed[2 * bins:])
    return workspace.inverse_(y.reshape(-1)).view(y.shape)


class InverseSplineWorkspace:
    """The inverse of N monotonic RQS (`rqs_knots`' parametrization) at one point each, with the parameters
    bins-first in one reused buffer (5·bins + 1, N), whose views are made once:

    - `sizes` (2·bins, N): the raw widths (rows 0 … bins − 1, as phi[..., :bins]), then the raw heights;
    - `slopes` (bins − 1, N): the raw interior derivatives (phi[..., 2·bins:]), between two rows of zeros (a raw
      value 0 is the derivative 1 at the bounds, so the bound knots need no special case);
    - 2·bins rows of scratch (the running sums of widths and heights).

    The caller writes `sizes` and `slopes`, then calls `inverse_` (which overwrites `sizes`). Built for speed on
    CPU: every step is a pass over contiguous rows of N values, in place where possible; views and the constants
    (0-dim tensors: a Python number costs each operation a conversion) exist once; with N of a few 10⁴ values the
    hot rows stay in a core's L2 cache.
    """

    def __init__(self, bins: int, bound: float, slope: float, n: int, like: Tensor) -> None:
        self.bins, self.bound, self.n = int(bins), float(bound), int(n)
        self.buffer = like.new_zeros(5 * bins + 1, n)
        self.running = self.buffer[: 2 * bins]
        self.sizes = self.buffer[2 * bins: 4 * bins]
        self.slopes = self.buffer[4 * bins + 1: 5 * bins]
        self._running_rows = [self.running.view(2, bins, n)[:, j] for j in range(bins)]  # (2, N) each
        self._size_rows = [self.sizes.view(2, bins, n)[:, j] for j in range(bins)]
        self._totals, self._interior_heights = self._running_rows[-1], self.running.view(2, bins, n)[1, :-1]
        # Σ_{j≤k} widths, Σ_{j≤k} heights, width k, height k (rows k, bins + k, …): one gather over (4, bins, N).
        self._knot_source = self.buffer[: 4 * bins].view(4, bins, n)
        # The raw derivatives at knots k and k + 1 (zero row, interior rows, zero row), as (2, bins, N).
        self._slope_source = self.buffer[4 * bins:].unfold(0, bins, 1).movedim(-1, 1)
        self._knot = like.new_empty(4, 1, n)
        self._derivative = like.new_empty(2, 1, n)
        inverse_log_slope = 1 / abs(math.log(slope))
        constant = {name: like.new_tensor(value) for name, value in (
            ("size_clip", 2 * inverse_log_slope), ("slope_clip", inverse_log_slope), ("one", 1.0),
            ("bound", self.bound), ("span", 2 * self.bound), ("zero", 0.0))}
        self._c = constant

    def inverse_(self, y: Tensor) -> Tensor:
        """x (N,) with spline(x) = y (N,) (identity outside [−bound, bound]), from the parameters written into
        `sizes` and `slopes`.

        The same function as `rqs_knots` + the segment's inverse, computing only what the inverse needs: the
        running sums of the exponentiated widths and heights stay unnormalized (y is mapped onto the heights'
        scale to find its bin, and only the bin's knots are normalized), the bin's six values come out of two
        gathers, and only its two derivatives are soft-clipped. The quadratic of the segment is solved in the
        stable form 2c / (−b − √(b² − 4ac))."""
        c, n, running, sizes = self._c, self.n, self.running, self.sizes
        # Soft clip w / (1 + 2|w| / |log slope|), then exp: the bin sizes up to a factor (the running-sum rows are
        # the clip's scratch first).
        torch.abs(sizes, out=running).mul_(c["size_clip"]).add_(c["one"])
        sizes.div_(running).exp_()
        self._running_rows[0].copy_(self._size_rows[0])
        for j in range(1, self.bins):  # running sums row by row: contiguous passes (cumsum here is slower)
            torch.add(self._running_rows[j - 1], self._size_rows[j], out=self._running_rows[j])
        scale = self._totals.reciprocal().mul_(c["span"])  # (2, N): x scale, y scale (knot units per unit sum)
        y_unnormalized = (y + c["bound"]).div_(scale[1])
        # Bin k (N,): the number of interior knots below y, y in (knot_k, knot_k+1].
        index = (self._interior_heights < y_unnormalized).sum(0).view(1, 1, n)
        knot = torch.gather(self._knot_source, 1, index.expand(4, 1, n), out=self._knot).view(2, 2, n)
        derivative = torch.gather(self._slope_source, 1, index.expand(2, 1, n), out=self._derivative).view(2, n)
        derivative.div_(derivative.abs().mul_(c["slope_clip"]).add_(c["one"])).exp_()
        # The lower knots (Σ_{j<k}) as differences of unnormalized sums, then scaled: one rounding relative to them.
        lower = knot[0] - knot[1]
        x0 = lower[0].mul_(scale[0])  # x0 + bound
        shifted = y_unnormalized.sub_(lower[1]).mul_(scale[1])  # y − y0
        width, height = knot[1].mul_(scale).unbind(0)
        d0, d1 = derivative[0], derivative[1]
        s = height / width
        curvature = (d0 + d1).sub_(s, alpha=2)
        t = shifted * curvature
        a = torch.addcmul(t, height, s - d0)
        minus_b = torch.addcmul(t, height, d0, value=-1)
        q = s.mul_(shifted)  # −c
        # b² − 4ac ≥ 0 exactly (the segment is monotonic); the clamp only stops float32 rounding from giving NaN.
        root = (minus_b * minus_b).addcmul_(a, q, value=4).clamp_min_(c["zero"]).sqrt_()
        x = torch.addcmul(x0, q.div_(root.sub_(minus_b)), width, value=2).sub_(c["bound"])
        low, high = torch.aminmax(y)
        if float(low) > -self.bound and float(high) <= self.bound:
            return x
        return torch.where((y > -self.bound) & (y <= self.bound), x, y)
