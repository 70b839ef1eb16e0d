"""`SuperResolutionFlow`: one universal conditional flow that upsamples every coarse voxel to its fine voxels.

p(E_fine | E_coarse) ≈ Π_i p(e_fine,i | E_coarse,i, …) (thesis Sec. 4.3): every coarse voxel of every shower is
one row; all rows of a batch go through the flow in a single call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.geometry import get_geometry
from caloray.models.base import Batch, Surrogate
from caloray.models.features import incident_1d
from caloray.superres.coarse import (
    CoarseGrid,
    coarse_energies,
    fine_groups,
    fine_layer_energies,
    scatter_fine_groups,
)
from caloray.superres.conditions import jitter_coarse_energy, n_conditions, raw_conditions
from caloray.superres.flow import superres_maf
from caloray.superres.transforms import (
    THRESHOLD_MEV,
    ConditionScaling,
    FineFractionLogit,
    apply_threshold,
    dequantize_fine,
)

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class SuperResolutionFlow(Surrogate):
    """SuperCalo upsampler: p(logit fine fractions (g,) | conditions of one coarse voxel).

    Arguments:
        fine_shape: (n_layers, n_alpha, n_r) of the regular fine grid (ds2: 45, 16, 9).
        groups: (r_group, alpha_group, layer_group) (ds2 choice A: 1, 2, 5; B: 3, 4, 1).
        oracle: condition on the fine-layer energies spanned (31 inputs for A) or not (strict, 26 for A).
        transforms, hidden_features, bins, bound, permutation_seed: the flow (`superres_maf`); defaults 8
            MADE+RQS blocks of 2 × 128, 8 bins on [−14, 14] with linear tails, reverse/random permutations.
        alpha: the logit regularizer (1e-6).
        coarse_energy_max_mev: E_coarse,max of the condition scaling (fit with `fit_coarse_energy_max`; the
            default 1 TeV bounds any coarse energy of ds2).
        fine_noise_kev, coarse_noise_kev: training noise widths, rand[0, 0.1 keV] per fine voxel and
            rand[0, 1 keV] on the coarse-energy condition (must be > 0: its half is the evaluation offset).
        threshold_mev: output cut, 15 keV.
        dtype: "float32" or "float64" (the thesis trains in double precision for stability).

    Training rows are the coarse voxels with energy > 0; empty coarse voxels upsample to zeros.
    `log_prob` is the density of the logit fractions (not per MeV: the fractions of a coarse voxel sum to 1).
    """

    kind = "superres-flow"

    def __init__(
        self,
        fine_shape: Sequence[int] = (45, 16, 9),
        groups: Sequence[int] = (1, 2, 5),
        oracle: bool = True,
        transforms: int = 8,
        hidden_features: Sequence[int] = (128, 128),
        bins: int = 8,
        bound: float = 14.0,
        alpha: float = 1e-6,
        coarse_energy_max_mev: float = 1e6,
        fine_noise_kev: float = 0.1,
        coarse_noise_kev: float = 1.0,
        threshold_mev: float = THRESHOLD_MEV,
        permutation_seed: int = 0,
        dtype: str = "float32",
    ) -> None:
        super().__init__()
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if coarse_noise_kev <= 0:
            raise ValueError(f"coarse_noise_kev must be > 0, got {coarse_noise_kev}")
        self.grid = CoarseGrid(*(int(n) for n in fine_shape), *(int(g) for g in groups))
        self.oracle = bool(oracle)
        self.transforms = int(transforms)
        self.hidden_features = [int(h) for h in hidden_features]
        self.bins = int(bins)
        self.bound = float(bound)
        self.alpha = float(alpha)
        self.coarse_energy_max_mev = float(coarse_energy_max_mev)
        self.fine_noise_kev = float(fine_noise_kev)
        self.coarse_noise_kev = float(coarse_noise_kev)
        self.threshold_mev = float(threshold_mev)
        self.permutation_seed = int(permutation_seed)
        self.dtype_name = dtype
        self.fractions = FineFractionLogit(self.alpha)
        self.scaling = ConditionScaling(
            n_layer_columns=self.grid.layer_group if self.oracle else 0,
            coarse_energy_max_mev=self.coarse_energy_max_mev,
            offset_mev=0.5 * self.coarse_noise_kev * 1e-3,
        )
        self.n_conditions = n_conditions(self.grid, self.oracle)
        self.flow = superres_maf(
            features=self.grid.group_size,
            context=self.n_conditions,
            transforms=self.transforms,
            hidden_features=self.hidden_features,
            bins=self.bins,
            bound=self.bound,
            permutation_seed=self.permutation_seed,
        )
        self.to(_DTYPES[dtype])

    @classmethod
    def for_geometry(
        cls, geometry: str = "ds2", choice: str | Sequence[int] = "A", **kwargs: Any
    ) -> SuperResolutionFlow:
        """The model for a built-in regular cylindrical geometry and coarse choice ("A", "B" or group sizes)."""
        grid = CoarseGrid.from_geometry(get_geometry(geometry), choice)
        return cls(fine_shape=(grid.n_layers, grid.n_alpha, grid.n_r), groups=grid.groups, **kwargs)

    def config(self) -> dict[str, Any]:
        g = self.grid
        return {
            "fine_shape": [g.n_layers, g.n_alpha, g.n_r],
            "groups": list(g.groups),
            "oracle": self.oracle,
            "transforms": self.transforms,
            "hidden_features": list(self.hidden_features),
            "bins": self.bins,
            "bound": self.bound,
            "alpha": self.alpha,
            "coarse_energy_max_mev": self.coarse_energy_max_mev,
            "fine_noise_kev": self.fine_noise_kev,
            "coarse_noise_kev": self.coarse_noise_kev,
            "threshold_mev": self.threshold_mev,
            "permutation_seed": self.permutation_seed,
            "dtype": self.dtype_name,
        }

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype_name]

    # ----- features ----------------------------------------------------------------------------------
    def conditions(
        self, coarse: Tensor, incident_energies: Tensor, layer_energies: Tensor | None = None
    ) -> Tensor:
        """Scaled conditions (B · n_coarse, n_conditions) from coarse (B, n_coarse) MeV, E_inc (B,) MeV and,
        for the oracle variant, the fine-layer energies (B, n_layers) MeV."""
        self._check_layer_energies(layer_energies)
        coarse = coarse.to(self.dtype)
        layers = layer_energies.to(coarse) if self.oracle and layer_energies is not None else None
        raw = raw_conditions(self.grid, coarse, incident_1d(incident_energies).to(coarse), layers)
        return self.scaling(raw)

    def features(self, batch: Batch, add_noise: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Rows of the non-empty coarse voxels of a batch of fine showers.

        Returns (logit fractions (M, group_size), scaled conditions (M, n_conditions), shower index (M,)).
        With `add_noise`, the fine voxels get rand[0, fine_noise_kev] and the coarse-energy condition
        rand[0, coarse_noise_kev] (keV); the oracle layer energies and neighbours stay noiseless.
        """
        showers = batch["showers"].to(self.dtype)
        incident = incident_1d(batch["incident_energies"]).to(self.dtype)
        coarse = coarse_energies(showers, self.grid)
        layers = fine_layer_energies(showers, self.grid) if self.oracle else None
        raw = raw_conditions(self.grid, coarse, incident, layers)
        fine = fine_groups(showers, self.grid).reshape(-1, self.grid.group_size)
        keep = coarse.reshape(-1) > 0
        raw, fine = raw[keep], fine[keep]
        if add_noise:
            raw = jitter_coarse_energy(raw, self.coarse_noise_kev)
            fine = dequantize_fine(fine, self.fine_noise_kev)
        rows = torch.arange(showers.shape[0], device=showers.device).repeat_interleave(self.grid.n_coarse)[keep]
        return self.fractions(fine, fine.sum(-1)), self.scaling(raw), rows

    # ----- likelihood --------------------------------------------------------------------------------
    def voxel_log_prob(self, batch: Batch, add_noise: bool = False) -> tuple[Tensor, Tensor]:
        """(log p per non-empty coarse voxel (M,), its shower index (M,))."""
        y, context, rows = self.features(batch, add_noise=add_noise)
        return self.flow(context).log_prob(y), rows

    def log_prob(self, batch: Batch, add_noise: bool = False) -> Tensor:
        """log p(logit fractions of all non-empty coarse voxels | conditions) per shower, (B,)."""
        log_p, rows = self.voxel_log_prob(batch, add_noise=add_noise)
        out = log_p.new_zeros(batch["showers"].shape[0])
        return out.index_add(0, rows, log_p)

    def loss(self, batch: Batch, add_noise: bool = True) -> Tensor:
        """Mean negative log-likelihood per non-empty coarse voxel (noise added by default)."""
        log_p, _ = self.voxel_log_prob(batch, add_noise=add_noise)
        return -log_p.mean()

    # ----- upsampling --------------------------------------------------------------------------------
    def sample(self, incident_energies: Tensor) -> Batch:
        raise NotImplementedError("SuperResolutionFlow is conditioned on coarse showers: use upsample(...)")

    @torch.no_grad()
    def upsample_with_removed(
        self,
        coarse: Tensor,
        incident_energies: Tensor,
        fine_layer_energies: Tensor | None = None,
        threshold_mev: float | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Fine showers (B, n_voxels) MeV and the energy removed by the cut per coarse voxel (B, n_coarse) MeV.

        coarse (B, n_coarse) MeV, incident_energies (B,) MeV, fine_layer_energies (B, n_layers) MeV (oracle
        only, required there). All non-empty coarse voxels are sampled in one flow call; coarse voxels with
        energy ≤ 0 stay empty. Per coarse voxel: Σ fine + removed = E_coarse (float rounding).
        `threshold_mev` defaults to the model's 15 keV.
        """
        coarse = coarse.to(self.dtype)
        batch = coarse.shape[0]
        incident = incident_1d(incident_energies).to(coarse)
        layers = fine_layer_energies.to(coarse) if fine_layer_energies is not None else None
        context = self.conditions(coarse, incident, layers)
        flat = coarse.reshape(-1)
        keep = flat > 0
        g = self.grid.group_size
        groups = coarse.new_zeros(flat.shape[0], g)
        removed = coarse.new_zeros(flat.shape[0])
        if bool(keep.any()):
            y = self.flow(context[keep]).sample()
            fine = self.fractions.inverse(y, flat[keep])
            cut = self.threshold_mev if threshold_mev is None else float(threshold_mev)
            groups[keep], removed[keep] = apply_threshold(fine, cut)
        showers = scatter_fine_groups(groups.reshape(batch, self.grid.n_coarse, g), self.grid)
        return showers, removed.reshape(batch, self.grid.n_coarse)

    @torch.no_grad()
    def upsample(
        self,
        coarse: Tensor,
        incident_energies: Tensor,
        fine_layer_energies: Tensor | None = None,
        threshold_mev: float | None = None,
    ) -> Tensor:
        """Fine showers (B, n_voxels) MeV from coarse showers (B, n_coarse) MeV, see `upsample_with_removed`."""
        return self.upsample_with_removed(coarse, incident_energies, fine_layer_energies, threshold_mev)[0]

    def _check_layer_energies(self, layer_energies: Tensor | None) -> None:
        if self.oracle and layer_energies is None:
            raise ValueError("oracle SuperResolutionFlow needs the fine-layer energies (B, n_layers) MeV")
        if layer_energies is not None and layer_energies.shape[-1] != self.grid.n_layers:
            raise ValueError(
                f"fine-layer energies have {layer_energies.shape[-1]} columns, expected {self.grid.n_layers}"
            )
