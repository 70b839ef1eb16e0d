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
from caloray.models.transforms import GAUSSIANIZE_FIT_SEED, MarginalGaussianization
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
    FRACTIONS,
    THRESHOLD_MEV,
    ConditionScaling,
    apply_threshold,
    dequantize_fine,
)

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: How the flow features are brought to the flow (`SuperResolutionFlow(marginals=...)`).
MARGINALS = ("none", "gaussianize")


class SuperResolutionFlow(Surrogate):
    """SuperCalo upsampler: p(fine-fraction features of one coarse voxel | its conditions).

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
        fractions: the features of a coarse voxel's g fine energies: "logit" (the thesis: g α-logit fractions
            of E_coarse, renormalized to sum to 1 when upsampling, `FineFractionLogit`) or "stick" (g − 1 α-logit
            stick-breaking fractions that sum to E_coarse by construction, `StickBreakingLogit`).
        marginals: "none" (the features go to the flow as they are, the thesis) or "gaussianize" (a per-feature
            quantile map onto N(0, 1) with `knots` knots, `MarginalGaussianization`, fitted once on the
            dequantized features of a training sample by `fit_preprocessing`; a bound of ≈ 5 suits it).
        standardize_conditions: after `ConditionScaling`, shift and scale every condition column to mean 0 and
            std 1 on a training sample (`fit_preprocessing`; constant columns are only shifted). The thesis'
            scaled conditions span very different ranges (log10 energies down to ≈ −9, one-hots 0/1, oracle
            layer energies / 65 GeV of 1e-4 in the first layers), which a small network trained briefly
            weighs badly.

    Training rows are the coarse voxels with energy > 0; empty coarse voxels upsample to zeros.
    `log_prob` is the density of the `fractions` features (logit units; with "gaussianize" its log-Jacobian is
    included, so the density is in the same space either way); not per MeV, the fine energies of a coarse
    voxel sum to E_coarse.
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
        fractions: str = "logit",
        marginals: str = "none",
        knots: int = 128,
        standardize_conditions: bool = False,
    ) -> None:
        super().__init__()
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if fractions not in FRACTIONS:
            raise ValueError(f"fractions must be one of {', '.join(FRACTIONS)}; got {fractions!r}")
        if marginals not in MARGINALS:
            raise ValueError(f"marginals must be one of {', '.join(MARGINALS)}; got {marginals!r}")
        if marginals == "gaussianize" and fine_noise_kev <= 0:
            raise ValueError("marginals='gaussianize' needs fine_noise_kev > 0 (the zeros must be dequantized)")
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
        self.fractions_name = fractions
        self.marginals = marginals
        self.knots = int(knots)
        self.fractions = FRACTIONS[fractions](self.alpha)
        # "stick" drops one feature: the last fine voxel takes what the others leave.
        self.n_features = self.grid.group_size - (1 if fractions == "stick" else 0)
        if marginals == "gaussianize":
            self.gaussianization = MarginalGaussianization(self.n_features, self.knots)
        self.standardize_conditions = bool(standardize_conditions)
        if self.standardize_conditions:  # only then: checkpoints of the other settings keep their state dict
            n_context = n_conditions(self.grid, self.oracle)
            self.register_buffer("condition_mean", torch.zeros(n_context))
            self.register_buffer("condition_std", torch.ones(n_context))
            self.register_buffer("conditions_fitted", torch.tensor(False))
        self.scaling = ConditionScaling(
            n_layer_columns=self.grid.layer_group if self.oracle else 0,
            coarse_energy_max_mev=self.coarse_energy_max_mev,
            offset_mev=0.5 * self.coarse_noise_kev * 1e-3,
        )
        self.n_conditions = n_conditions(self.grid, self.oracle)
        self.flow = superres_maf(
            features=self.n_features,
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
            "fractions": self.fractions_name,
            "marginals": self.marginals,
            "knots": self.knots,
            "standardize_conditions": self.standardize_conditions,
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
        return self._scale_conditions(raw)

    def _scale_conditions(self, raw: Tensor) -> Tensor:
        """`ConditionScaling`, then (with `standardize_conditions`) the fitted column standardization."""
        scaled = self.scaling(raw)
        if self.standardize_conditions:
            return (scaled - self.condition_mean) / self.condition_std
        return scaled

    def features(
        self, batch: Batch, add_noise: bool = False, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Rows of the non-empty coarse voxels of a batch of fine showers.

        Returns (`fractions` features (M, n_features), scaled conditions (M, n_conditions), shower index (M,)),
        before the `marginals` map. With `add_noise`, the fine voxels get rand[0, fine_noise_kev] and the
        coarse-energy condition rand[0, coarse_noise_kev] (keV), drawn from `generator` if given; the oracle
        layer energies and neighbours stay noiseless.
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
            raw = jitter_coarse_energy(raw, self.coarse_noise_kev, generator)
            fine = dequantize_fine(fine, self.fine_noise_kev, generator)
        rows = torch.arange(showers.shape[0], device=showers.device).repeat_interleave(self.grid.n_coarse)[keep]
        return self.fractions(fine, fine.sum(-1)), self._scale_conditions(raw), rows

    def _to_flow_space(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """(flow inputs h (M, n_features), Σ log |dh/dy| per row (M,)) of features y (M, n_features)."""
        if self.marginals == "gaussianize":
            h, log_slope = self.gaussianization.forward_and_log_abs_det_jacobian(y)
            return h, log_slope.sum(-1)
        return y, y.new_zeros(y.shape[0])

    def _from_flow_space(self, h: Tensor) -> Tensor:
        return self.gaussianization.inverse(h) if self.marginals == "gaussianize" else h

    @property
    def needs_preprocessing_fit(self) -> bool:
        gaussianize = self.marginals == "gaussianize" and not bool(self.gaussianization.fitted)
        return gaussianize or (self.standardize_conditions and not bool(self.conditions_fitted))

    @torch.no_grad()
    def fit_preprocessing(self, batch: Batch) -> None:
        """Fit the data-dependent preprocessing on a training sample (B showers), a pure function of the sample:
        the `gaussianize` quantiles on the dequantized features (noise from a fixed seed) and the condition
        standardization on the noise-free conditions. No-op when neither is configured."""
        if self.standardize_conditions:
            self.conditions_fitted.fill_(False)  # the features below must see the unstandardized conditions
            self.condition_mean.zero_()
            self.condition_std.fill_(1.0)
            _, context, _ = self.features(batch)
            std = context.std(0).nan_to_num(0.0)
            self.condition_mean.copy_(context.mean(0))
            self.condition_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std))
            self.conditions_fitted.fill_(True)
        if self.marginals == "gaussianize":
            generator = torch.Generator(device=batch["showers"].device).manual_seed(GAUSSIANIZE_FIT_SEED)
            y, _, _ = self.features(batch, add_noise=True, generator=generator)
            self.gaussianization.fit(y)

    # ----- likelihood --------------------------------------------------------------------------------
    def voxel_log_prob(self, batch: Batch, add_noise: bool = False) -> tuple[Tensor, Tensor]:
        """(log p per non-empty coarse voxel (M,), its shower index (M,))."""
        y, context, rows = self.features(batch, add_noise=add_noise)
        h, log_jacobian = self._to_flow_space(y)
        return self.flow(context).log_prob(h) + log_jacobian, rows

    def log_prob(self, batch: Batch, add_noise: bool = False) -> Tensor:
        """log p(logit fractions of all non-empty coarse voxels | conditions) per shower, (B,)."""
        log_p, rows = self.voxel_log_prob(batch, add_noise=add_noise)
        out = log_p.new_zeros(batch["showers"].shape[0])
        return out.index_add(0, rows, log_p)

    def loss(self, batch: Batch, add_noise: bool = True) -> Tensor:
        """Mean negative log-likelihood per non-empty coarse voxel (noise added by default; fits the
        `gaussianize` quantiles on this batch first if the trainer has not)."""
        if self.training and self.needs_preprocessing_fit:
            self.fit_preprocessing(batch)
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
            y = self._from_flow_space(self.flow(context[keep]).sample())
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
