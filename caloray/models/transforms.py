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
        # remaining[:, i] = Σ_{j >= i} E_j
        remaining = torch.flip(torch.cumsum(torch.flip(layer_energies, (-1,)), -1), (-1,))
        total = remaining[:, :1]
        u_total = total / (self.scale * incident_energies_mev[:, None])
        numerator, denominator = layer_energies[:, :-1], remaining[:, :-1]
        safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
        ratios = torch.where(denominator > 0, numerator / safe, torch.zeros_like(numerator))
        return torch.cat([u_total, ratios], dim=-1)

    def inverse(self, u: Tensor, incident_energies_mev: Tensor) -> Tensor:
        remaining = u[:, 0] * self.scale * incident_energies_mev
        layers = []
        for i in range(1, u.shape[-1]):
            layer = u[:, i] * remaining
            layers.append(layer)
            remaining = remaining - layer
        layers.append(remaining)
        return torch.stack(layers, dim=-1)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "scale": self.scale}


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
    """A per-feature quantile transform onto N(0, 1): monotone and piecewise linear, fitted once on a sample.

    For each of `features` features the sample's quantiles x_k at the levels Φ(y_k) of `knots` equally spaced
    y_k in [−y_max, y_max] (y_max = Φ⁻¹(1 − 1/(2N)) for a sample of N) are joined linearly; beyond the end
    knots the map continues with the mean slope 2·y_max / (x_last − x_first). On the fitting sample every
    feature comes out ≈ N(0, 1).

    Why the mean slope in the tails: the end segments can be almost vertical (float32 logits of fractions near
    1 take a few discrete values, so the top knots nearly tie); continued with that slope, a held-out value a
    hair beyond the last knot lands at y ≈ 100 and its likelihood swamps a whole batch's.

    Why: a zero-inflated voxel, its zeros dequantized into a narrow noise band, is a spike next to a broad
    bulk in logit space; after standardization the flow must reproduce the spike's mass and width, and a
    small flow smears it into many tiny non-zero voxels. Here the spike is spread over its share of the
    Gaussian, so the flow only has to learn how features depend on each other and on the condition.

    Buffers (state dict): `knots_x` (features, knots) and `fitted`; `fit(sample)` sets them.
    """

    def __init__(self, features: int, knots: int = 128) -> None:
        super().__init__()
        if knots < 3:
            raise ValueError(f"MarginalGaussianization needs knots >= 3, got {knots}")
        self.features = int(features)
        self.knots = int(knots)
        self.register_buffer("knots_x", torch.linspace(-4.0, 4.0, self.knots).repeat(self.features, 1))
        self.register_buffer("y_max", torch.tensor(4.0))
        self.register_buffer("fitted", torch.tensor(False))

    def _knots_y(self) -> Tensor:
        return torch.linspace(-1.0, 1.0, self.knots, dtype=self.knots_x.dtype, device=self.knots_x.device) * self.y_max

    @torch.no_grad()
    def fit(self, sample: Tensor) -> None:
        """Set the knots from `sample` (N, features); ties are split so the knots increase strictly."""
        n = sample.shape[0]
        if n < 2 or sample.shape[1] != self.features:
            raise ValueError(f"fit needs (N >= 2, {self.features}) values, got {tuple(sample.shape)}")
        y_max = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1.0 - 0.5 / n, dtype=torch.float64))
        y = torch.linspace(-1.0, 1.0, self.knots, dtype=torch.float64) * y_max
        levels = torch.distributions.Normal(0.0, 1.0).cdf(y)
        x = torch.cat([_column_quantiles(block, levels) for block in sample.split(QUANTILE_COLUMNS, dim=1)])
        # Strictly increasing: a constant stretch of the sample (a clamped feature) would give infinite slopes.
        step = 1e-6 * (x[:, -1] - x[:, 0]).clamp_min(1.0)
        for k in range(1, self.knots):
            x[:, k] = torch.maximum(x[:, k], x[:, k - 1] + step)
        self.knots_x.copy_(x.to(self.knots_x.dtype))
        self.y_max.fill_(float(y_max))
        self.fitted.fill_(True)

    def _segments(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x at the segment's left knot, its slope dy/dx and y at its left knot, for segment `index` (B, D)."""
        flat = self.knots_x.flatten()
        offset = torch.arange(self.features, device=index.device) * self.knots
        left, right = flat[index + offset], flat[index + 1 + offset]
        dy = 2.0 * self.y_max / (self.knots - 1)
        y_left = -self.y_max + dy * index.to(left.dtype)
        return left, dy / (right - left), y_left

    def forward(self, x: Tensor) -> Tensor:
        """y (B, D) ≈ N(0, 1) features from x (B, D)."""
        return self.forward_and_log_abs_det_jacobian(x)[0]

    def _tails(self) -> tuple[Tensor, Tensor, Tensor]:
        """(first knot (D,), last knot (D,), tail slope (D,) = 2·y_max / (last − first))."""
        first, last = self.knots_x[:, 0], self.knots_x[:, -1]
        return first, last, 2.0 * self.y_max / (last - first)

    def forward_and_log_abs_det_jacobian(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(y (B, D), element-wise log |dy/dx| (B, D))."""
        if torch.onnx.is_in_onnx_export():  # ONNX has no searchsorted: count the knots below x instead
            index = (x.unsqueeze(-1) > self.knots_x).sum(-1) - 1
        else:
            index = torch.searchsorted(self.knots_x, x.T.contiguous()).T - 1
        left, slope, y_left = self._segments(index.clamp(0, self.knots - 2))
        first, last, tail = self._tails()
        below, above = x <= first, x > last
        y = torch.where(below, tail * (x - first) - self.y_max,
                        torch.where(above, tail * (x - last) + self.y_max, y_left + slope * (x - left)))
        return y, torch.log(torch.where(below | above, tail.expand_as(slope), slope))

    def inverse(self, y: Tensor) -> Tensor:
        """x (B, D) from y (B, D); the knots of y are equally spaced, so the segment is arithmetic."""
        dy = 2.0 * self.y_max / (self.knots - 1)
        index = torch.floor((y + self.y_max) / dy).to(torch.long).clamp(0, self.knots - 2)
        left, slope, y_left = self._segments(index)
        first, last, tail = self._tails()
        return torch.where(y <= -self.y_max, first + (y + self.y_max) / tail,
                           torch.where(y > self.y_max, last + (y - self.y_max) / tail, left + (y - y_left) / slope))


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
