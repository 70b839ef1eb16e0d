"""Invertible, serializable preprocessing transforms for calorimeter features.

Every transform is a parameter-free `torch.nn.Module` with

- `forward(x, ...)` / `inverse(y, ...)`, exact inverses of each other up to float rounding;
- `log_abs_det_jacobian(x, ...)`: the element-wise log |dy/dx| (same shape as `x`) where a density
  in physical units needs it;
- `config()` / `from_config(config)`: a JSON-serializable description; `transform_from_config` rebuilds
  any transform of this module from its config (the ``"type"`` key names the class).

Energies are in MeV throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

#: 1 keV in MeV.
KEV_IN_MEV = 1e-3
#: The Flow-I incident-energy reference, 10 GeV, in MeV.
TEN_GEV_IN_MEV = 1e4


class InvertibleTransform(torch.nn.Module):
    """Base class: an invertible, parameter-free, serializable feature map."""

    type_name: ClassVar[str] = ""

    def config(self) -> dict[str, Any]:
        """JSON-serializable constructor arguments plus ``"type"``."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InvertibleTransform:
        """Rebuild from `config()` (the ``"type"`` key is ignored here)."""
        kwargs = {key: value for key, value in config.items() if key != "type"}
        return cls(**kwargs)

    def inverse(self, *args: Tensor) -> Tensor:
        raise NotImplementedError


class Log10Scale(InvertibleTransform):
    """y = factor · log10((x + offset) / reference), element-wise, for x > −offset.

    Used for E_inc → log10(E_inc / 10 GeV) (`incident_energy_transform`) and for the Flow-I layer
    energies E_i → 2·(log10(E_i + 1 keV) − 1) (`layer_energy_transform`). `offset` and `reference` are in
    the units of x (MeV here); `factor` is dimensionless.
    """

    type_name = "Log10Scale"

    def __init__(self, reference: float, offset: float = 0.0, factor: float = 1.0) -> None:
        super().__init__()
        if reference <= 0 or factor <= 0 or offset < 0:
            raise ValueError(
                "Log10Scale needs reference > 0, factor > 0, offset >= 0; "
                f"got reference={reference}, factor={factor}, offset={offset}"
            )
        self.reference = float(reference)
        self.offset = float(offset)
        self.factor = float(factor)

    def forward(self, x: Tensor) -> Tensor:
        return self.factor * torch.log10((x + self.offset) / self.reference)

    def inverse(self, y: Tensor) -> Tensor:
        return self.reference * torch.pow(10.0, y / self.factor) - self.offset

    def log_abs_det_jacobian(self, x: Tensor) -> Tensor:
        """log |dy/dx| = log(factor / ((x + offset) · ln 10)), element-wise."""
        return math.log(self.factor / math.log(10.0)) - torch.log(x + self.offset)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "reference": self.reference,
            "offset": self.offset,
            "factor": self.factor,
        }

    def extra_repr(self) -> str:
        return f"reference={self.reference}, offset={self.offset}, factor={self.factor}"


def incident_energy_transform() -> Log10Scale:
    """E_inc [MeV] → log10(E_inc / 10 GeV) (Flow-I, paper Eq. A1)."""
    return Log10Scale(reference=TEN_GEV_IN_MEV)


def layer_energy_transform() -> Log10Scale:
    """E_i [MeV] → 2·(log10(E_i / MeV + 1e-3) − 1) (Flow-I, paper Eq. A2).

    The paper does not state the unit of E_i inside the log; caloray uses **MeV** (1 keV = 1e-3 MeV).
    With MeV, layer energies between 1 keV and 100 GeV map to [−8, 8], well inside the spline bound ±14
    (with keV, 100 GeV would sit on the bound; with GeV, empty layers would sit at −14).
    """
    return Log10Scale(reference=10.0, offset=KEV_IN_MEV, factor=2.0)


class AlphaLogit(InvertibleTransform):
    """α-regularized logit: y = logit(k), k = (1 − 2α)·x + α, for x in [0, 1] (thesis Eq. 5)."""

    type_name = "AlphaLogit"

    def __init__(self, alpha: float = 1e-6) -> None:
        super().__init__()
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"AlphaLogit needs 0 < alpha < 0.5, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        k = (1.0 - 2.0 * self.alpha) * x + self.alpha
        return torch.log(k) - torch.log1p(-k)

    def inverse(self, y: Tensor) -> Tensor:
        return (torch.sigmoid(y) - self.alpha) / (1.0 - 2.0 * self.alpha)

    def log_abs_det_jacobian(self, x: Tensor) -> Tensor:
        """log |dy/dx| = log(1 − 2α) − log k − log(1 − k), element-wise."""
        k = (1.0 - 2.0 * self.alpha) * x + self.alpha
        return math.log1p(-2.0 * self.alpha) - torch.log(k) - torch.log1p(-k)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class IncidentEnergyNormalization(InvertibleTransform):
    """Voxel (or layer) energies divided by `scale` · E_inc: y = x / (scale · E_inc).

    Shapes: x (B, D) MeV, incident_energies_mev (B,) MeV → y (B, D) dimensionless. The thesis (Sec. 4.3.2)
    scales the data by 0.5 / E_inc (scale = 2) so that the total Σ y stays below 1 for almost all showers.
    """

    type_name = "IncidentEnergyNormalization"

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"IncidentEnergyNormalization needs scale > 0, got {scale}")
        self.scale = float(scale)

    def _denominator(self, x: Tensor, incident_energies_mev: Tensor) -> Tensor:
        return (self.scale * incident_energies_mev).reshape(-1, *([1] * (x.dim() - 1)))

    def forward(self, x: Tensor, incident_energies_mev: Tensor) -> Tensor:
        return x / self._denominator(x, incident_energies_mev)

    def inverse(self, y: Tensor, incident_energies_mev: Tensor) -> Tensor:
        return y * self._denominator(y, incident_energies_mev)

    def log_abs_det_jacobian(self, x: Tensor, incident_energies_mev: Tensor) -> Tensor:
        """log |dy/dx| = −log(scale · E_inc), broadcast to x's shape."""
        return (-torch.log(self._denominator(x, incident_energies_mev))).expand_as(x)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "scale": self.scale}


class LayerNormalization(InvertibleTransform):
    """Voxel energies divided by the energy of their layer (CaloFlow Flow-II / thesis INN inputs).

    forward(showers (B, V) MeV, layer_energies (B, L) MeV) → fractions (B, V), each layer summing to 1;
    voxels of an empty layer (energy 0) get fraction 0. inverse multiplies back. The layer energies are
    conditions, so `log_abs_det_jacobian` is −log E_layer(v) per voxel (the map at fixed layer energies).
    """

    type_name = "LayerNormalization"

    def __init__(self, voxel_layer: Sequence[int]) -> None:
        super().__init__()
        self.voxel_layer_list = [int(i) for i in voxel_layer]
        self.register_buffer("voxel_layer", torch.tensor(self.voxel_layer_list, dtype=torch.long), False)

    def _per_voxel(self, layer_energies: Tensor) -> Tensor:
        return layer_energies.index_select(-1, self.voxel_layer)

    def forward(self, showers: Tensor, layer_energies: Tensor) -> Tensor:
        denominator = self._per_voxel(layer_energies)
        safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        return torch.where(denominator > 0, showers / safe, torch.zeros_like(showers))

    def inverse(self, fractions: Tensor, layer_energies: Tensor) -> Tensor:
        return fractions * self._per_voxel(layer_energies)

    def log_abs_det_jacobian(self, showers: Tensor, layer_energies: Tensor) -> Tensor:
        return -torch.log(self._per_voxel(layer_energies)).expand_as(showers)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "voxel_layer": self.voxel_layer_list}


def stick_breaking_fractions(energies: Tensor) -> Tensor:
    """Stick-breaking fractions u_j = e_j / Σ_{k ≥ j} e_k, j = 0 … n − 2, of energies (..., n) → (..., n − 1);
    u_j = 0 where the remainder is 0. Used for the INN's layer "extra dimensions" and the super-resolution flow's
    fine energies."""
    remainders = energies.flip(-1).cumsum(-1).flip(-1)[..., :-1]  # Σ_{k ≥ j} e_k
    positive = remainders > 0
    return torch.where(positive, energies[..., :-1] / torch.where(positive, remainders, 1.0), 0.0)


def stick_breaking_energies(fractions: Tensor, total: Tensor) -> Tensor:
    """Inverse of `stick_breaking_fractions`: energies (..., n) from fractions (..., n − 1) and their sum (...),
    e_j = u_j · (what the earlier ones left), the last one what is left; for u in [0, 1] every energy is ≥ 0 and
    they sum to `total` by construction (telescoping). A loop over the n − 1 columns rather than a cumprod, which
    has no ONNX export (the VAE's sampling graph goes through it)."""
    remaining, energies = total, []
    for j in range(fractions.shape[-1]):
        energies.append(fractions[..., j] * remaining)
        remaining = remaining - energies[-1]
    return torch.stack([*energies, remaining], dim=-1)


class ExtraDimensions(InvertibleTransform):
    """Layer energies ↔ the thesis' "extra dimensions" u (Sec. 4.1, Eq. 4), in [0, 1] for physical showers.

    forward(layer_energies (B, L) MeV, incident_energies (B,) MeV) → u (B, L) with
    u_0 = E_tot / (scale · E_inc) and u_i = E_{i−1} / Σ_{j ≥ i−1} E_j for i = 1 … L−1 (0 where the
    denominator is 0). inverse recovers the L layer energies exactly (up to rounding). No clipping here:
    u_0 > 1 when E_tot > scale · E_inc; models that need [0, 1] clamp explicitly.
    """

    type_name = "ExtraDimensions"

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"ExtraDimensions needs scale > 0, got {scale}")
        self.scale = float(scale)

    def forward(self, layer_energies: Tensor, incident_energies_mev: Tensor) -> Tensor:
        u_total = layer_energies.sum(-1, keepdim=True) / (self.scale * incident_energies_mev[:, None])
        return torch.cat([u_total, stick_breaking_fractions(layer_energies)], dim=-1)

    def inverse(self, u: Tensor, incident_energies_mev: Tensor) -> Tensor:
        return stick_breaking_energies(u[:, 1:], u[:, 0] * self.scale * incident_energies_mev)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "scale": self.scale}


#: Seed of the dequantization noise drawn when a model fits its `MarginalGaussianization` (so the fit is a pure
#: function of the sample; the ShowerINN and the super-resolution flow both use it).
GAUSSIANIZE_FIT_SEED = 0
#: Columns sorted at once when fitting quantiles (bounds the float64 copy: 10k rows × 512 ≈ 40 MB).
QUANTILE_COLUMNS = 512


def _column_quantiles(sample: Tensor, levels: Tensor) -> Tensor:
    """Linearly interpolated quantiles (columns, K) of each column of `sample` (N, columns) at `levels` (K,) in
    [0, 1], float64. Sorting instead of `torch.quantile`, which refuses inputs of more than 2²⁴ values (ds2)."""
    ordered = sample.to(torch.float64).sort(dim=0).values
    position = levels.to(torch.float64) * (ordered.shape[0] - 1)
    below = position.floor().long().clamp(max=ordered.shape[0] - 1)
    above = (below + 1).clamp(max=ordered.shape[0] - 1)
    weight = (position - below).unsqueeze(1)
    return (ordered[below] * (1.0 - weight) + ordered[above] * weight).T.contiguous()


class MarginalGaussianization(torch.nn.Module):
    """A per-feature quantile transform onto N(0, 1), optionally per condition value: monotone and piecewise
    linear in x, fitted once on a sample.

    For each of `features` features the sample's quantiles x_k at the levels Φ(y_k) of `knots` equally spaced
    y_k in [−y_max, y_max] (y_max = Φ⁻¹(1 − 1/(2N)), N the smallest group fitted) are joined linearly; beyond
    the end knots the map continues with the mean slope 2·y_max / (x_last − x_first).

    With `condition_bins` C > 1 the knots are fitted separately at C centres c_j of a scalar condition (its
    quantiles in the fitting sample; each row counts for the nearest centre) and interpolated linearly in c
    between neighbouring centres (clamped beyond the ends). A convex combination of increasing knots increases,
    so for every c the map stays monotone and invertible, and its log-Jacobian is the log-slope as before: the
    transform is part of the conditional density p(x | c).

    Why: a zero-inflated voxel, its zeros dequantized into a narrow noise band, is a spike next to a broad
    bulk in logit space; after standardization the flow must reproduce the spike's mass and width, and a small
    flow smears it into many tiny non-zero voxels. Here the spike is spread over its share of the Gaussian.
    Why per condition: that share depends strongly on E_inc (a ds1-photons voxel is empty in ~90 % of 256 MeV
    showers and ~35 % at 65 GeV); fitted over all energies, the flow must still learn the shift, and a small
    one leaves 256 MeV showers with twice the reference's hit voxels.
    Why the mean slope in the tails: the end segments can be almost vertical (float32 logits of fractions near
    1 take a few discrete values, so the top knots nearly tie); continued with that slope, a held-out value a
    hair beyond the last knot lands at y ≈ 100 and its likelihood swamps a whole batch's.

    Buffers (state dict): `knots_x` (C, features, knots), `centers` (C,), `y_max`, `fitted`.
    """

    def __init__(self, features: int, knots: int = 128, condition_bins: int = 1) -> None:
        super().__init__()
        if knots < 3 or condition_bins < 1:
            raise ValueError(f"MarginalGaussianization needs knots >= 3 and condition_bins >= 1, "
                             f"got {knots} and {condition_bins}")
        self.features = int(features)
        self.knots = int(knots)
        self.condition_bins = int(condition_bins)
        initial = torch.linspace(-4.0, 4.0, self.knots).repeat(self.condition_bins, self.features, 1)
        self.register_buffer("knots_x", initial)
        self.register_buffer("centers", torch.arange(float(self.condition_bins)))
        self.register_buffer("y_max", torch.tensor(4.0))
        self.register_buffer("fitted", torch.tensor(False))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Models saved before `condition_bins` existed store (features, knots) and no centres.
        key = prefix + "knots_x"
        if key in state_dict and state_dict[key].dim() == 2:
            state_dict[key] = state_dict[key].unsqueeze(0)
            state_dict.setdefault(prefix + "centers", torch.zeros(1))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def fit(self, sample: Tensor, condition: Tensor | None = None) -> None:
        """Set the knots from `sample` (N, features) and, with condition_bins > 1, its condition (N,); ties are
        split so the knots increase strictly."""
        n = sample.shape[0]
        if n < 2 or sample.dim() != 2 or sample.shape[1] != self.features:
            raise ValueError(f"fit needs (N >= 2, {self.features}) values, got {tuple(sample.shape)}")
        if self.condition_bins == 1:
            centers, nearest = torch.zeros(1, dtype=torch.float64), torch.zeros(n, dtype=torch.long)
        else:
            if condition is None or condition.shape != (n,):
                raise ValueError(f"fit with condition_bins={self.condition_bins} needs a condition of shape ({n},)")
            c = condition.to(torch.float64)
            levels = (torch.arange(self.condition_bins, dtype=torch.float64) + 0.5) / self.condition_bins
            centers = _column_quantiles(c[:, None], levels)[0]
            distinct = centers.unique()  # a discrete condition (an energy ladder) gives repeated centres
            nearest = (c[:, None] - distinct[None, :]).abs().argmin(1)
        groups = [sample[nearest == j] for j in range(int(nearest.max()) + 1)]
        smallest = min(len(group) for group in groups)
        if smallest < 2:
            raise ValueError(f"fit needs >= 2 rows per condition bin, got {smallest}")
        normal = torch.distributions.Normal(0.0, 1.0)
        y_max = normal.icdf(torch.tensor(1.0 - 0.5 / smallest, dtype=torch.float64))
        levels = normal.cdf(torch.linspace(-1.0, 1.0, self.knots, dtype=torch.float64) * y_max)
        fitted = torch.stack([_strictly_increasing(torch.cat([
            _column_quantiles(block, levels) for block in group.split(QUANTILE_COLUMNS, dim=1)])) for group in groups])
        if self.condition_bins > 1:  # each of the C slots takes the knots of its distinct centre
            fitted = fitted[torch.searchsorted(distinct, centers).clamp(max=len(distinct) - 1)]
        self.knots_x.copy_(fitted.to(self.knots_x.dtype))
        self.centers.copy_(centers.to(self.centers.dtype))
        self.y_max.fill_(float(y_max))
        self.fitted.fill_(True)

    def _neighbours(self, condition: Tensor | None, rows: int) -> tuple[Tensor, Tensor, Tensor]:
        """(lower centre index (B,), upper (B,), weight of the upper (B, 1)) for `condition` (B,)."""
        zeros = torch.zeros(rows, dtype=torch.long, device=self.knots_x.device)
        if self.condition_bins == 1 or condition is None:
            return zeros, zeros, torch.zeros(rows, 1, dtype=self.knots_x.dtype, device=self.knots_x.device)
        c = condition.to(self.centers.dtype)
        lower = ((c[:, None] >= self.centers[None, :]).sum(1) - 1).clamp(0, self.condition_bins - 1)
        upper = (lower + 1).clamp(max=self.condition_bins - 1)
        gap = self.centers[upper] - self.centers[lower]
        weight = torch.where(gap > 0, (c - self.centers[lower]) / gap.clamp_min(1e-30), torch.zeros_like(c))
        return lower, upper, weight.clamp(0.0, 1.0)[:, None].to(self.knots_x.dtype)

    def _at_condition(self, at: Tensor, lower: Tensor, upper: Tensor, weight: Tensor) -> Tensor:
        """Knot values at flat within-bin positions `at` (feature · knots + k, any shape), interpolated between
        the bins `lower` and `upper` with `weight` (all broadcastable to `at`): the one gather of every lookup."""
        flat = self.knots_x.flatten()
        if self.condition_bins == 1:  # one set of knots: one gather (sampling speed)
            return _take(flat, at)
        stride = self.features * self.knots
        at_lower, at_upper = _take(flat, at + lower * stride), _take(flat, at + upper * stride)
        return at_lower + weight * (at_upper - at_lower)

    def _knot(self, neighbours: tuple[Tensor, Tensor, Tensor], index: Tensor) -> Tensor:
        """x of knot `index` (B, D) (any integer tensor of that shape) at each row's condition."""
        lower, upper, weight = neighbours
        at = torch.arange(self.features, device=index.device) * self.knots + index
        return self._at_condition(at, lower[:, None], upper[:, None], weight)

    def _segment(self, neighbours: tuple[Tensor, Tensor, Tensor], index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(x at the segment's left knot, its slope dy/dx, y at its left knot) for segment `index` (B, D)."""
        left, right = self._knot(neighbours, index), self._knot(neighbours, index + 1)
        dy = 2.0 * self.y_max / (self.knots - 1)
        return left, dy / (right - left), -self.y_max + dy * index.to(left.dtype)

    def _ends(self, neighbours: tuple[Tensor, Tensor, Tensor], rows: Tensor,
              columns: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(first knot, last knot, tail slope 2·y_max / (last − first)) of the elements (rows, columns) (any
        matching shapes) at their rows' conditions."""
        lower, upper, weight = neighbours
        at = columns * self.knots
        bins = (lower[rows], upper[rows], weight[rows, 0])
        first, last = self._at_condition(at, *bins), self._at_condition(at + self.knots - 1, *bins)
        return first, last, 2.0 * self.y_max / (last - first)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """y (B, D) ≈ N(0, 1) features from x (B, D) at `condition` (B,)."""
        return self.forward_and_log_abs_det_jacobian(x, condition)[0]

    def forward_and_log_abs_det_jacobian(self, x: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(y (B, D), element-wise log |dy/dx| (B, D)) at `condition` (B,)."""
        neighbours = self._neighbours(condition, x.shape[0])
        # Bisection for the segment (knots interpolated per row, so no shared sorted sequence; ONNX-friendly too):
        # the largest k with knot_k < x, within [0, K − 2].
        low = torch.zeros(x.shape, dtype=torch.long, device=x.device)
        high = torch.full(x.shape, self.knots - 1, dtype=torch.long, device=x.device)
        for _ in range(max(1, (self.knots - 1).bit_length())):
            middle = (low + high) // 2
            below_x = self._knot(neighbours, middle) < x
            low, high = torch.where(below_x, middle, low), torch.where(below_x, high, middle)
        left, slope, y_left = self._segment(neighbours, low.clamp(0, self.knots - 2))
        rows = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(x)
        first, last, tail = self._ends(neighbours, rows, torch.arange(self.features, device=x.device).expand_as(x))
        below, above = x <= first, x > last
        y = torch.where(below, tail * (x - first) - self.y_max,
                        torch.where(above, tail * (x - last) + self.y_max, y_left + slope * (x - left)))
        return y, torch.log(torch.where(below | above, tail, slope))

    def inverse(self, y: Tensor, condition: Tensor | None = None) -> Tensor:
        """x (B, D) from y (B, D) at `condition` (B,); the knots of y are equally spaced, so the segment is
        arithmetic."""
        neighbours = self._neighbours(condition, y.shape[0])
        dy = 2.0 * self.y_max / (self.knots - 1)
        index = torch.floor((y + self.y_max) / dy).to(torch.long).clamp(0, self.knots - 2)
        left, slope, y_left = self._segment(neighbours, index)
        x = left + (y - y_left) / slope
        # Only ~1e-3 of the values lie beyond the end knots: fix those alone (the sampling path of every
        # gaussianized INN; the tails of all B × D values cost as much as the segments).
        rows, columns = torch.nonzero(y.abs() > self.y_max, as_tuple=True)
        if rows.numel():
            first, last, tail = self._ends(neighbours, rows, columns)
            outlying = y[rows, columns]
            x[rows, columns] = torch.where(outlying < 0, first + (outlying + self.y_max) / tail,
                                           last + (outlying - self.y_max) / tail)
        return x


def _take(values: Tensor, index: Tensor) -> Tensor:
    """values (n,) at `index` (any shape): `index_select` on the flat index, ~3× faster on CPU than `values[index]`
    (this is the sampling path of every gaussianized INN)."""
    return values.index_select(0, index.reshape(-1)).view(index.shape)


def _strictly_increasing(knots: Tensor) -> Tensor:
    """Knots (D, K) with ties split: a constant stretch of the sample (a clamped feature) would give infinite
    slopes."""
    step = 1e-6 * (knots[:, -1] - knots[:, 0]).clamp_min(1.0)
    for k in range(1, knots.shape[1]):
        knots[:, k] = torch.maximum(knots[:, k], knots[:, k - 1] + step)
    return knots


TRANSFORM_TYPES: dict[str, type[InvertibleTransform]] = {
    cls.type_name: cls
    for cls in (Log10Scale, AlphaLogit, IncidentEnergyNormalization, LayerNormalization, ExtraDimensions)
}


def transform_from_config(config: dict[str, Any]) -> InvertibleTransform:
    """Rebuild any transform of this module from its `config()`."""
    name = config.get("type")
    if name not in TRANSFORM_TYPES:
        raise ValueError(f"unknown transform type {name!r}; known: {', '.join(sorted(TRANSFORM_TYPES))}")
    return TRANSFORM_TYPES[name].from_config(config)
