"""CaloFlow Flow-II role: p(normalized voxel energies | layer energies, E_inc), and the chained sampler."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.models.base import Batch, Surrogate
from caloray.models.features import add_uniform_noise, check_voxel_layer, incident_1d, layer_sums
from caloray.models.spline_flow import conditional_spline_maf
from caloray.models.transforms import (
    AlphaLogit,
    LayerNormalization,
    incident_energy_transform,
    layer_energy_transform,
)


class VoxelFlow(Surrogate):
    """Conditional spline MAF over all V voxels, for ds1-sized geometries (≈ 368–533 voxels).

    Features: voxel energies (after uniform noise in [0, `noise_kev`] keV per voxel) divided by the energy
    of their (noisy) layer, then α-regularized logit with `alpha` (1e-6). Condition (L + 1 values): the
    Flow-I preprocessing of the layer energies, 2·(log10(E_i/MeV + 1e-3) − 1), and log10(E_inc / 10 GeV).
    Default architecture (our choice at the CaloFlow Flow-II scale): 8 MADE blocks of 1×512 hidden units,
    RQS with 8 bins on [−14, 14].

    `log_prob` is the density of the logit features (optionally of the layer fractions, see there); a
    density per MeV^V does not exist because the fractions of each layer sum to 1 given its energy.
    """

    kind = "voxel-flow"

    def __init__(
        self,
        voxel_layer: Sequence[int],
        transforms: int = 8,
        hidden_features: Sequence[int] = (512,),
        bins: int = 8,
        bound: float = 14.0,
        alpha: float = 1e-6,
        noise_kev: float = 0.1,
    ) -> None:
        super().__init__()
        self.voxel_layer_list = check_voxel_layer(voxel_layer)
        self.n_layers = max(self.voxel_layer_list) + 1
        self.n_voxels = len(self.voxel_layer_list)
        self.transforms = int(transforms)
        self.hidden_features = [int(h) for h in hidden_features]
        self.bins = int(bins)
        self.bound = float(bound)
        self.alpha = float(alpha)
        self.noise_kev = float(noise_kev)
        self.register_buffer("voxel_layer", torch.tensor(self.voxel_layer_list, dtype=torch.long), False)
        self.incident_transform = incident_energy_transform()
        self.layer_transform = layer_energy_transform()
        self.normalization = LayerNormalization(self.voxel_layer_list)
        self.logit = AlphaLogit(self.alpha)
        self.flow = conditional_spline_maf(
            features=self.n_voxels,
            context=self.n_layers + 1,
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
            "alpha": self.alpha,
            "noise_kev": self.noise_kev,
        }

    def context(self, layer_energies_mev: Tensor, incident_energies_mev: Tensor) -> Tensor:
        """Flow condition (B, L + 1) from layer energies (B, L) MeV and E_inc (B,) MeV."""
        return torch.cat(
            [
                self.layer_transform(layer_energies_mev),
                self.incident_transform(incident_energies_mev)[:, None],
            ],
            dim=-1,
        )

    def features(self, showers_mev: Tensor, add_noise: bool = False) -> tuple[Tensor, Tensor]:
        """(logit features (B, V), layer energies (B, L) MeV) of showers (B, V) MeV, optionally noisy."""
        if add_noise:
            showers_mev = add_uniform_noise(showers_mev, self.noise_kev)
        layer_energies = layer_sums(showers_mev, self.voxel_layer, self.n_layers)
        fractions = self.normalization(showers_mev, layer_energies).clamp(0.0, 1.0)
        return self.logit(fractions), layer_energies

    def log_prob(self, batch: Batch, add_noise: bool = False, fraction_density: bool = False) -> Tensor:
        """log p(logit(layer fractions) | layer energies, E_inc) per shower, (B,).

        With `fraction_density=True` the logit's log-Jacobian is added: the density of the layer fractions
        themselves (per unit fraction^V).
        """
        features, layer_energies = self.features(batch["showers"], add_noise=add_noise)
        context = self.context(layer_energies, incident_1d(batch["incident_energies"]))
        log_p = self.flow(context).log_prob(features)
        if fraction_density:
            fractions = self.logit.inverse(features)
            log_p = log_p + self.logit.log_abs_det_jacobian(fractions).sum(-1)
        return log_p

    def loss(self, batch: Batch, add_noise: bool = True) -> Tensor:
        """Mean negative log-likelihood of the logit features (noise added by default)."""
        return -self.log_prob(batch, add_noise=add_noise).mean()

    @torch.no_grad()
    def sample(
        self, incident_energies: Tensor, layer_energies: Tensor | None = None, threshold_mev: float = 0.0
    ) -> Batch:
        """Voxel energies for given E_inc (B,) MeV and layer energies (B, L) MeV (required).

        Sampled fractions are mapped back through the inverse logit, clipped to [0, 1] and renormalized so
        that every layer sums exactly to its requested energy; voxels below `threshold_mev` are then set to
        0 (default 0: no threshold). Returns {"showers": (B, V) MeV, "incident_energies": (B,) MeV}.
        """
        if layer_energies is None:
            raise ValueError("VoxelFlow.sample needs layer_energies (B, L) MeV, e.g. from a LayerEnergyFlow")
        incident_energies = incident_1d(incident_energies)
        features = self.flow(self.context(layer_energies, incident_energies)).sample()
        showers = self.showers_from_features(features, layer_energies, threshold_mev)
        return {"showers": showers, "incident_energies": incident_energies}

    def showers_from_features(self, features: Tensor, layer_energies: Tensor, threshold_mev: float = 0.0) -> Tensor:
        """Showers (B, V) MeV from logit features (B, V) and layer energies (B, L) MeV (see `sample`)."""
        fractions = self.logit.inverse(features).clamp(0.0, 1.0)
        fraction_sums = layer_sums(fractions, self.voxel_layer, self.n_layers)
        fractions = self.normalization(fractions, fraction_sums)
        showers = self.normalization.inverse(fractions, layer_energies.clamp_min(0.0))
        if threshold_mev > 0:
            showers = torch.where(showers < threshold_mev, torch.zeros_like(showers), showers)
        return showers


@torch.no_grad()
def sample_showers(
    layer_flow: Surrogate, voxel_flow: Surrogate, incident_energies: Tensor, threshold_mev: float = 0.0
) -> Batch:
    """Chain Flow-I → Flow-II: layer energies from `layer_flow`, then voxels from `voxel_flow`.

    Works with single models or `Ensemble`s of them. Returns {"showers": (B, V) MeV, "layer_energies":
    (B, L) MeV (the Flow-I sample), "incident_energies": (B,) MeV}.
    """
    layer_config, voxel_config = layer_flow.config(), voxel_flow.config()
    layer_config = layer_config.get("member_configs", [layer_config])[0]
    voxel_config = voxel_config.get("member_configs", [voxel_config])[0]
    if layer_config["voxel_layer"] != voxel_config["voxel_layer"]:
        raise ValueError("layer_flow and voxel_flow were built for different voxel_layer maps")
    layer_energies = layer_flow.sample(incident_energies)["layer_energies"]
    showers = voxel_flow.sample(incident_energies, layer_energies=layer_energies, threshold_mev=threshold_mev)
    return {
        "showers": showers["showers"],
        "layer_energies": layer_energies,
        "incident_energies": incident_energies,
    }
