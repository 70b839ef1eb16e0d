"""Invertible, serializable preprocessing of the super-resolution flow (thesis Sec. 4.2.3).

- `FineFractionLogit`: fine energies of one coarse voxel ↔ α-logit of their fractions of the coarse energy.
- `StickBreakingLogit`: the same energies ↔ α-logit of g − 1 stick-breaking fractions (sum to E_coarse by
  construction, no renormalization).
- `ConditionScaling`: the column-wise scaling of the conditional inputs (see `caloray.superres.conditions`).
- `dequantize_fine` and `apply_threshold`: the (non-invertible) training noise and the 15 keV output cut.

All transforms follow `caloray.models.transforms.InvertibleTransform` (`config()` / `from_config`).
Energies in MeV.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from caloray.models.transforms import (
    KEV_IN_MEV,
    AlphaLogit,
    InvertibleTransform,
    Log10Scale,
    stick_breaking_energies,
    stick_breaking_fractions,
)
from caloray.superres.conditions import N_NEIGHBOURS

#: The thesis' incident-energy reference 10^4.5 MeV (log10(E_inc / 10^4.5 MeV) ∈ [−1.5, 1.5] for ds2).
INCIDENT_REFERENCE_MEV = 10.0**4.5
#: The thesis' fine-layer energy scale, 65 GeV.
LAYER_SCALE_MEV = 65e3
#: Output cut: sampled fine voxels below 15 keV are set to 0.
THRESHOLD_MEV = 0.015


class LinearScale(InvertibleTransform):
    """y = x / scale, element-wise (the fine-layer energies: E_layer / 65 GeV)."""

    type_name = "LinearScale"

    def __init__(self, scale: float) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"LinearScale needs scale > 0, got {scale}")
        self.scale = float(scale)

    def forward(self, x: Tensor) -> Tensor:
        return x / self.scale

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.scale

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "scale": self.scale}


class FineFractionLogit(InvertibleTransform):
    """Fine energies of a coarse voxel ↔ y = logit(α + (1 − 2α) · e_j / E_coarse), α = 1e-6.

    forward(fine (N, g) MeV, coarse (N,) MeV) → y (N, g); coarse must be > 0.
    inverse(y (N, g), coarse (N,)) → fine (N, g) MeV: fractions are clipped to [0, 1] and renormalized to sum
    to 1 (uniform if all clip to 0), so the g fine energies sum to E_coarse exactly up to float rounding.
    For fine energies that already sum to E_coarse the round trip is the identity (up to rounding).
    """

    type_name = "FineFractionLogit"

    def __init__(self, alpha: float = 1e-6) -> None:
        super().__init__()
        self.logit = AlphaLogit(alpha)
        self.alpha = float(alpha)

    def forward(self, fine: Tensor, coarse: Tensor) -> Tensor:
        return self.logit(fine / coarse[:, None])

    def inverse(self, y: Tensor, coarse: Tensor) -> Tensor:
        fractions = self.logit.inverse(y).clamp(0.0, 1.0)
        total = fractions.sum(-1, keepdim=True)
        uniform = torch.full_like(fractions, 1.0 / fractions.shape[-1])
        fractions = torch.where(total > 0, fractions / torch.where(total > 0, total, 1.0), uniform)
        return fractions * coarse[:, None]

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "alpha": self.alpha}


class StickBreakingLogit(InvertibleTransform):
    """Fine energies of a coarse voxel ↔ y = logit(α + (1 − 2α) · u), g − 1 stick-breaking fractions
    u_j = e_j / Σ_{k ≥ j} e_k (j = 0 … g − 2; a remainder of 0 gives u_j = 0).

    forward(fine (N, g) MeV, coarse (N,) MeV) → y (N, g − 1); `coarse` is unused (the fractions are of the
    remainders, so the first one is of Σ fine).
    inverse(y (N, g − 1), coarse (N,)) → fine (N, g) MeV: e_j = u_j · E_coarse · Π_{k<j} (1 − u_k), the last fine
    voxel takes what is left, so the g energies are ≥ 0 and sum to E_coarse by construction (telescoping),
    whatever y is.

    Why: `FineFractionLogit` gives g features that sum to 1 in fraction space, a (g − 1)-dimensional shell that
    a small flow does not learn (generated sums spread over 0.04–2 for ds2 after 4 epochs); the renormalization
    of its inverse then moves a coarse voxel's energy into the fine voxels that should be almost empty. Here
    every y ∈ R^(g − 1) is a valid shower and no renormalization is needed.
    """

    type_name = "StickBreakingLogit"

    def __init__(self, alpha: float = 1e-6) -> None:
        super().__init__()
        self.logit = AlphaLogit(alpha)
        self.alpha = float(alpha)

    def forward(self, fine: Tensor, coarse: Tensor | None = None) -> Tensor:
        return self.logit(stick_breaking_fractions(fine).clamp(0.0, 1.0))

    def inverse(self, y: Tensor, coarse: Tensor) -> Tensor:
        return stick_breaking_energies(self.logit.inverse(y).clamp(0.0, 1.0), coarse)

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "alpha": self.alpha}


#: Fine-energy parametrizations of `SuperResolutionFlow(fractions=...)`: name → transform class.
FRACTIONS = {"logit": FineFractionLogit, "stick": StickBreakingLogit}


class ConditionScaling(InvertibleTransform):
    """Column-wise scaling of the raw conditional inputs (B · n_coarse, n_conditions), see `conditions`.

    - coarse and neighbour energies: log10((E + offset) / E_max), offset = ½ keV by default. The thesis
      writes log10((E + rand[0, 1 keV]) / E_max) followed by an α-logit; the logit of a log10 ≤ 0 is undefined,
      so we keep the log10 (our choice) and replace the noise by its mean outside training (neighbours never
      get noise; `jitter_coarse_energy` adds the training noise to the coarse energy). The offset keeps
      empty neighbours finite: log10(0.5 keV / E_max).
    - E_inc: log10(E_inc / 10^4.5 MeV).
    - fine-layer energies (oracle, `n_layer_columns` of them): E / 65 GeV.
    - one-hot columns: unchanged.
    """

    type_name = "ConditionScaling"

    def __init__(
        self,
        n_layer_columns: int,
        coarse_energy_max_mev: float,
        offset_mev: float = 0.5 * KEV_IN_MEV,
        incident_reference_mev: float = INCIDENT_REFERENCE_MEV,
        layer_scale_mev: float = LAYER_SCALE_MEV,
    ) -> None:
        super().__init__()
        if n_layer_columns < 0:
            raise ValueError(f"n_layer_columns must be >= 0, got {n_layer_columns}")
        self.n_layer_columns = int(n_layer_columns)
        self.coarse_energy_max_mev = float(coarse_energy_max_mev)
        self.offset_mev = float(offset_mev)
        self.incident_reference_mev = float(incident_reference_mev)
        self.layer_scale_mev = float(layer_scale_mev)
        self.energy = Log10Scale(reference=self.coarse_energy_max_mev, offset=self.offset_mev)
        self.incident = Log10Scale(reference=self.incident_reference_mev)
        self.layers = LinearScale(self.layer_scale_mev)

    def _slices(self) -> tuple[slice, slice, slice, slice, slice]:
        k = self.n_layer_columns
        return (slice(0, 1), slice(1, 2), slice(2, 2 + k), slice(2 + k, 2 + k + N_NEIGHBOURS),
                slice(2 + k + N_NEIGHBOURS, None))

    def _map(self, x: Tensor, inverse: bool) -> Tensor:
        coarse, incident, layers, neighbours, onehot = self._slices()
        maps = (self.energy, self.incident, self.layers, self.energy)
        parts = [
            (m.inverse(x[:, s]) if inverse else m(x[:, s]))
            for m, s in zip(maps, (coarse, incident, layers, neighbours), strict=True)
        ]
        return torch.cat([*parts, x[:, onehot]], dim=1)

    def forward(self, raw: Tensor) -> Tensor:
        return self._map(raw, inverse=False)

    def inverse(self, scaled: Tensor) -> Tensor:
        return self._map(scaled, inverse=True)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "n_layer_columns": self.n_layer_columns,
            "coarse_energy_max_mev": self.coarse_energy_max_mev,
            "offset_mev": self.offset_mev,
            "incident_reference_mev": self.incident_reference_mev,
            "layer_scale_mev": self.layer_scale_mev,
        }


def dequantize_fine(fine: Tensor, noise_kev: float = 0.1, generator: torch.Generator | None = None) -> Tensor:
    """Training noise: fine (…, g) MeV + U[0, `noise_kev`] keV per voxel (thesis: rand[0, 0.1 keV]).

    The model divides by the sum of the *noisy* fine voxels (not by the noiseless E_coarse as the thesis
    writes), so that fractions stay in [0, 1] and sum to 1 even for coarse voxels of a few keV.
    """
    if noise_kev <= 0:
        return fine
    noise = torch.rand(fine.shape, generator=generator, dtype=fine.dtype, device=fine.device)
    return fine + noise * (noise_kev * KEV_IN_MEV)


def apply_threshold(fine: Tensor, threshold_mev: float = THRESHOLD_MEV) -> tuple[Tensor, Tensor]:
    """Set voxels below `threshold_mev` to 0: returns (kept (…), removed energy summed over the last axis)."""
    below = fine < threshold_mev
    kept = torch.where(below, torch.zeros_like(fine), fine)
    removed = torch.where(below, fine, torch.zeros_like(fine)).sum(-1)
    return kept, removed


def fit_coarse_energy_max(coarse: Tensor, noise_kev: float = 1.0) -> float:
    """E_coarse,max for `ConditionScaling`: the largest coarse energy (MeV) in a data set plus the noise width."""
    return float(coarse.max()) + noise_kev * KEV_IN_MEV
