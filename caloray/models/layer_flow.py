"""CaloFlow Flow-I: a conditional spline MAF for p(layer energies | E_inc)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.models.base import Batch, Surrogate
from caloray.models.features import add_uniform_noise, check_voxel_layer, incident_1d, layer_sums, remove_layer_noise
from caloray.models.spline_flow import conditional_spline_maf
from caloray.models.transforms import incident_energy_transform, layer_energy_transform


class LayerEnergyFlow(Surrogate):
    """p(E_1 … E_L | E_inc) with the Flow-I settings of the MLE-calibration paper (appendix A).

    Features: layer energies E_i [MeV] (sums of voxel energies per layer) mapped by
    y_i = 2·(log10(E_i / MeV + 1e-3) − 1) (1 keV offset; unit MeV inside the log, see
    `caloray.models.transforms.layer_energy_transform`). Condition: c = log10(E_inc / 10 GeV).
    Flow: MAF with `transforms` MADE blocks of `hidden_features`, RQS with `bins` bins on
    [−bound, bound] (identity outside). Defaults: 6 blocks of 2×64, 8 bins, bound 14.

    Dequantization: uniform noise in [0, `noise_kev`] keV per voxel is added to the voxel energies before
    summing into layer energies — always in `loss` by default, optionally in `log_prob` /
    `layer_energies` (the paper uses it in training and evaluation). `sample` inverts it
    (`caloray.models.features.remove_layer_noise`): the flow generates dequantized layer energies, and a
    generated energy in the pure-noise region is an empty layer, as in the data.

    Args:
        voxel_layer: (V,) layer index 0 … L−1 of each voxel.
        readout_threshold_mev: the training data's per-cell readout threshold [MeV] (0: none); `sample` reads
            layer energies below it (after removing the noise's mean) as empty. Training fills it in from the
            geometry's `readout_threshold_mev` attribute.
    """

    kind = "layer-energy-flow"

    def __init__(
        self,
        voxel_layer: Sequence[int],
        transforms: int = 6,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
        bound: float = 14.0,
        noise_kev: float = 0.1,
        readout_threshold_mev: float = 0.0,
    ) -> None:
        super().__init__()
        self.voxel_layer_list = check_voxel_layer(voxel_layer)
        self.n_layers = max(self.voxel_layer_list) + 1
        self.n_voxels = len(self.voxel_layer_list)
        self.transforms = int(transforms)
        self.hidden_features = [int(h) for h in hidden_features]
        self.bins = int(bins)
        self.bound = float(bound)
        self.noise_kev = float(noise_kev)
        self.readout_threshold_mev = float(readout_threshold_mev)
        if not self.readout_threshold_mev >= 0:
            raise ValueError(f"readout_threshold_mev must be ≥ 0, got {readout_threshold_mev}")
        self.register_buffer("voxel_layer", torch.tensor(self.voxel_layer_list, dtype=torch.long), False)
        counts = torch.bincount(self.voxel_layer, minlength=self.n_layers)
        self.register_buffer("voxels_per_layer", counts, False)
        self.incident_transform = incident_energy_transform()
        self.layer_transform = layer_energy_transform()
        self.flow = conditional_spline_maf(
            features=self.n_layers,
            context=1,
            transforms=self.transforms,
            hidden_features=self.hidden_features,
            bins=self.bins,
            bound=self.bound,
        )

    def config(self) -> dict[str, Any]:
        return {
            "voxel_layer": list(self.voxel_layer_list),
            "transforms": self.transforms,
            "hidden_features": list(self.hidden_features),
            "bins": self.bins,
            "bound": self.bound,
            "noise_kev": self.noise_kev,
            "readout_threshold_mev": self.readout_threshold_mev,
        }

    # --- features -------------------------------------------------------------------------------

    def layer_energies(
        self, showers_mev: Tensor, add_noise: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        """Layer energies (B, L) MeV of showers (B, V) MeV, optionally after per-voxel uniform noise."""
        if add_noise:
            showers_mev = add_uniform_noise(showers_mev, self.noise_kev, generator)
        return layer_sums(showers_mev, self.voxel_layer, self.n_layers)

    def context(self, incident_energies_mev: Tensor) -> Tensor:
        """Flow condition (B, 1): log10(E_inc / 10 GeV) from E_inc (B,) MeV."""
        return self.incident_transform(incident_energies_mev).unsqueeze(-1)

    def _batch_layer_energies(self, batch: Batch, add_noise: bool) -> Tensor:
        if "layer_energies" in batch:
            return batch["layer_energies"]
        return self.layer_energies(batch["showers"], add_noise=add_noise)

    # --- densities ------------------------------------------------------------------------------

    def log_prob_features(
        self, layer_energies_mev: Tensor, incident_energies_mev: Tensor, physical_units: bool = False
    ) -> Tensor:
        """log p(x | z) for many candidate incident energies per shower in one batched forward.

        Args:
            layer_energies_mev: x, (B, L) MeV (add noise beforehand if wanted, see `layer_energies`).
            incident_energies_mev: z, (B, K) MeV candidates per shower, or (B,) for one each.
            physical_units: if True, add Σ_i log|dy_i/dE_i| so the density is per MeV^L of layer energy;
                otherwise the density of the preprocessed features y.

        Returns:
            (B, K) (or (B,) for (B,) input): entry [b, k] is log p(x_b | z_bk). Internally x is repeated K
            times and all B·K pairs go through the flow at once.
        """
        squeeze = incident_energies_mev.dim() == 1
        z = incident_energies_mev.unsqueeze(-1) if squeeze else incident_energies_mev
        n_showers, n_candidates = z.shape
        if layer_energies_mev.shape != (n_showers, self.n_layers):
            raise ValueError(
                f"layer energies must have shape ({n_showers}, {self.n_layers}), got {tuple(layer_energies_mev.shape)}"
            )
        y = self.layer_transform(layer_energies_mev)
        y_repeated = y.repeat_interleave(n_candidates, dim=0)
        log_p = self.flow(self.context(z.reshape(-1))).log_prob(y_repeated).reshape(n_showers, n_candidates)
        if physical_units:
            log_jacobian = self.layer_transform.log_abs_det_jacobian(layer_energies_mev).sum(-1)
            log_p = log_p + log_jacobian[:, None]
        return log_p.squeeze(-1) if squeeze else log_p

    def log_prob(self, batch: Batch, physical_units: bool = False, add_noise: bool = False) -> Tensor:
        """log p(layer energies | E_inc) per shower, (B,).

        Uses ``batch["layer_energies"]`` (B, L) MeV if present, else sums ``batch["showers"]`` per layer
        (after noise if `add_noise`). By default the density of the preprocessed features
        y = 2·(log10(E/MeV + 1e-3) − 1); with `physical_units=True` the density per MeV^L (adds the
        transform's log-Jacobian).
        """
        layer_energies = self._batch_layer_energies(batch, add_noise)
        return self.log_prob_features(
            layer_energies, incident_1d(batch["incident_energies"]), physical_units=physical_units
        )

    def loss(self, batch: Batch, add_noise: bool = True) -> Tensor:
        """Mean negative log-likelihood of the preprocessed layer energies (noise added by default)."""
        return -self.log_prob(batch, add_noise=add_noise).mean()

    def readout_energies(self, noisy_layer_mev: Tensor) -> Tensor:
        """Dequantized layer energies (B, L) MeV → readout layer energies (B, L) MeV: the noise's mean removed,
        values in the pure-noise region or below the readout threshold set to exactly 0 (see
        `remove_layer_noise`)."""
        return remove_layer_noise(noisy_layer_mev, self.voxels_per_layer, self.noise_kev, self.readout_threshold_mev)

    def _sampled_energies(self, y: Tensor, remove_noise: bool) -> Tensor:
        noisy = self.layer_transform.inverse(y)
        return self.readout_energies(noisy) if remove_noise else noisy.clamp_min(0.0)

    @torch.no_grad()
    def sample(self, incident_energies: Tensor, remove_noise: bool = True) -> Batch:
        """One layer-energy vector per incident energy (B,) MeV.

        Returns {"layer_energies": (B, L) MeV, "incident_energies": (B,) MeV}: readout layer energies
        (`readout_energies`: dequantization inverted, empty layers exactly 0); with `remove_noise=False` the
        flow's dequantized draw itself, clipped at 0 (the inverse transform can go below 0 by the 1 keV offset).
        """
        incident_energies = incident_1d(incident_energies)
        y = self.flow(self.context(incident_energies)).sample()
        return {"layer_energies": self._sampled_energies(y, remove_noise), "incident_energies": incident_energies}

    def noise_shapes(self) -> dict[str, tuple[int, str]]:
        """One standard-normal base draw per layer."""
        return {"noise": (self.n_layers, "normal")}

    def sample_from_noise(self, incident_energies: Tensor, noise: Tensor) -> Batch:
        """`sample` with the flow's base draw given: noise (B, L) ~ N(0, 1) → {"layer_energies": (B, L) MeV, ...}.

        The flow's inverse maps the base draw to preprocessed layer energies (autoregressive: L sequential
        MADE passes); `sample` is this with noise from the flow's own base distribution."""
        incident_energies = incident_1d(incident_energies)
        y = self.flow(self.context(incident_energies)).transform.inv(noise)
        return {"layer_energies": self._sampled_energies(y, True), "incident_energies": incident_energies}
