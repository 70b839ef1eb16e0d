"""Conditional shower VAEs (Gaussian and Bernoulli hit × energy) with the thesis preprocessing."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from caloray.models.base import Batch, Surrogate
from caloray.models.features import check_voxel_layer, incident_1d, layer_sums
from caloray.models.transforms import (
    AlphaLogit,
    ExtraDimensions,
    LayerNormalization,
    incident_energy_transform,
)

VARIANTS = ("gaussian", "bernoulli")
#: Standardization leaves features with a smaller std in the fitting sample unscaled (logit units; the
#: α = 1e-6 logit spans ±13.8, so real features vary by far more).
MIN_FEATURE_STD = 0.05


def _mlp(sizes: Sequence[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.LeakyReLU(0.01))
    return torch.nn.Sequential(*layers)


class ShowerVAE(Surrogate):
    """A VAE on all V voxels conditioned on E_inc (thesis Sec. 4.1, 4.3, 4.4), usable up to ds2 (6480 voxels).

    Data representation (D = V + L values per shower, thesis Sec. 4.1):

    - voxel energies divided by their layer energy (each non-empty layer sums to 1);
    - the L "extra dimensions" u_0 = E_tot / (`energy_scale` · E_inc), u_i = E_{i−1} / Σ_{j≥i−1} E_j, which
      encode the layer energies and the normalisation by the incident energy (clamped to [0, 1]; the
      thesis uses energy_scale = 2 on ds1);
    - α-regularized logit (α = `alpha`, 1e-6), then standardization with fixed per-feature mean/std
      (buffers saved in the state dict; set by `fit_standardization`, or with `auto_standardize` by the
      trainer's `fit_preprocessing` sample, else from the first training batch seen by `loss`; identity before
      that). Features nearly constant in that sample are only centred.

    Unlike the thesis' VAE+INN chain, the extra dimensions are part of the VAE's data (not a condition), so
    the model samples complete showers from E_inc alone. Condition: log10(E_inc / 10 GeV).

    Variants (`variant`):

    - ``"gaussian"``: decoder mean μ_D(z) for all D features; loss Σ (h − μ_D)² + β · KL (β = 2σ_D²).
    - ``"bernoulli"`` (hit/no-hit × energy): the decoder also outputs a hit logit per voxel; loss
      BCE(hit) + Σ over hit voxels and extra dimensions of (h − μ_D)² + β · KL. Sampling draws hits from
      Bernoulli(sigmoid(logit)), so non-hit voxels are exactly 0. A voxel is "hit" if its energy is
      > `hit_threshold_mev`. (The thesis' Bernoulli VAE applies a BCE to the normalised energies
      themselves; this hurdle form keeps its BCE on occupancy and adds a Gaussian energy term.)

    Generation returns the decoder mean for energies (the thesis' convention), renormalizes each layer's
    fractions to 1 and multiplies by the layer energies decoded from u. No `log_prob` (a VAE has only a
    bound on the likelihood).
    """

    kind = "shower-vae"

    def __init__(
        self,
        voxel_layer: Sequence[int],
        variant: str = "gaussian",
        latent_dim: int = 50,
        hidden_features: Sequence[int] = (1024, 256),
        beta: float = 1.0,
        alpha: float = 1e-6,
        energy_scale: float = 2.0,
        hit_threshold_mev: float = 0.0,
        auto_standardize: bool = True,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"ShowerVAE variant must be one of {VARIANTS}, got {variant!r}")
        self.voxel_layer_list = check_voxel_layer(voxel_layer)
        self.n_layers = max(self.voxel_layer_list) + 1
        self.n_voxels = len(self.voxel_layer_list)
        self.variant = variant
        self.latent_dim = int(latent_dim)
        self.hidden_features = [int(h) for h in hidden_features]
        self.beta = float(beta)
        self.alpha = float(alpha)
        self.energy_scale = float(energy_scale)
        self.hit_threshold_mev = float(hit_threshold_mev)
        self.auto_standardize = bool(auto_standardize)
        self.register_buffer("voxel_layer", torch.tensor(self.voxel_layer_list, dtype=torch.long), False)
        self.incident_transform = incident_energy_transform()
        self.normalization = LayerNormalization(self.voxel_layer_list)
        self.extra_dimensions = ExtraDimensions(self.energy_scale)
        self.logit = AlphaLogit(self.alpha)
        n_features = self.n_voxels + self.n_layers
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("standardization_fitted", torch.tensor(False))
        n_decoded = n_features + (self.n_voxels if variant == "bernoulli" else 0)
        self.encoder = _mlp([n_features + 1, *self.hidden_features, 2 * self.latent_dim])
        self.decoder = _mlp([self.latent_dim + 1, *reversed(self.hidden_features), n_decoded])

    def config(self) -> dict[str, Any]:
        return {
            "voxel_layer": list(self.voxel_layer_list),
            "variant": self.variant,
            "latent_dim": self.latent_dim,
            "hidden_features": list(self.hidden_features),
            "beta": self.beta,
            "alpha": self.alpha,
            "energy_scale": self.energy_scale,
            "hit_threshold_mev": self.hit_threshold_mev,
            "auto_standardize": self.auto_standardize,
        }

    # --- preprocessing --------------------------------------------------------------------------

    def _logit_features(self, showers_mev: Tensor, incident_energies_mev: Tensor) -> Tensor:
        layer_energies = layer_sums(showers_mev, self.voxel_layer, self.n_layers)
        fractions = self.normalization(showers_mev, layer_energies)
        extra = self.extra_dimensions(layer_energies, incident_energies_mev)
        return self.logit(torch.cat([fractions, extra], dim=-1).clamp(0.0, 1.0))

    def preprocess(self, showers_mev: Tensor, incident_energies_mev: Tensor) -> Tensor:
        """Standardized logit features h (B, V + L) of showers (B, V) MeV at E_inc (B,) MeV."""
        return (self._logit_features(showers_mev, incident_energies_mev) - self.feature_mean) / self.feature_std

    def postprocess(self, h: Tensor, incident_energies_mev: Tensor, hits: Tensor | None = None,
                    layer_energies: Tensor | None = None) -> Tensor:
        """Showers (B, V) MeV from standardized features h (B, V + L); `hits` (B, V) bool zeroes voxels;
        `layer_energies` (B, L) MeV, when given, replace the ones decoded from the extra dimensions."""
        values = self.logit.inverse(h * self.feature_std + self.feature_mean).clamp(0.0, 1.0)
        fractions, extra = values[:, : self.n_voxels], values[:, self.n_voxels :]
        if hits is not None:
            fractions = torch.where(hits, fractions, torch.zeros_like(fractions))
        fractions = self.normalization(fractions, layer_sums(fractions, self.voxel_layer, self.n_layers))
        if layer_energies is None:
            layer_energies = self.extra_dimensions.inverse(extra, incident_energies_mev)
        return self.normalization.inverse(fractions, layer_energies.clamp_min(0.0))

    @torch.no_grad()
    def fit_standardization(self, showers_mev: Tensor, incident_energies_mev: Tensor) -> None:
        """Set the per-feature mean/std buffers from (a sample of) the training data."""
        features = self._logit_features(showers_mev, incident_1d(incident_energies_mev))
        self.feature_mean.copy_(features.mean(0))
        std = features.std(0).nan_to_num(0.0)
        # Features (nearly) constant in the sample, e.g. voxels it never hits, stay unscaled: dividing by a tiny
        # std would turn the first hit seen later into a ~1e4σ outlier and the loss into inf/NaN.
        self.feature_std.copy_(torch.where(std < MIN_FEATURE_STD, torch.ones_like(std), std))
        self.standardization_fitted.fill_(True)

    @property
    def needs_preprocessing_fit(self) -> bool:
        """With `auto_standardize`, until the standardization is fitted."""
        return self.auto_standardize and not bool(self.standardization_fitted)

    def fit_preprocessing(self, batch: Batch) -> None:
        """Fit the standardization on the trainer's sample (`fit_standardization`)."""
        self.fit_standardization(batch["showers"], batch["incident_energies"])

    # --- networks -------------------------------------------------------------------------------

    def _context(self, incident_energies_mev: Tensor) -> Tensor:
        return self.incident_transform(incident_energies_mev)[:, None]

    def encode(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance, each (B, latent_dim)."""
        incident = incident_1d(batch["incident_energies"])
        h = self.preprocess(batch["showers"], incident)
        mean, log_var = self.encoder(torch.cat([h, self._context(incident)], -1)).chunk(2, -1)
        return mean, log_var

    def decode(self, latent: Tensor, incident_energies_mev: Tensor) -> tuple[Tensor, Tensor | None]:
        """Decoder mean μ_D (B, V + L) in standardized logit space and hit logits (B, V) (Bernoulli only)."""
        out = self.decoder(torch.cat([latent, self._context(incident_energies_mev)], -1))
        n_features = self.n_voxels + self.n_layers
        if self.variant == "bernoulli":
            return out[:, :n_features], out[:, n_features:]
        return out, None

    def loss(self, batch: Batch) -> Tensor:
        """Negative β-ELBO (up to constants), averaged over the batch.

        With `auto_standardize`, the first call in training mode fits the standardization on its batch
        (unless `fit_standardization` was called before).
        """
        showers, incident = batch["showers"], incident_1d(batch["incident_energies"])
        if self.training and self.needs_preprocessing_fit:
            self.fit_standardization(showers, incident)
        h = self.preprocess(showers, incident)
        mean, log_var = self.encoder(torch.cat([h, self._context(incident)], -1)).chunk(2, -1)
        latent = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        decoded, hit_logits = self.decode(latent, incident)
        squared = (h - decoded) ** 2
        kl = 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(-1)
        if hit_logits is None:
            reconstruction = squared.sum(-1)
        else:
            hits = (showers > self.hit_threshold_mev).to(h.dtype)
            bce = F.binary_cross_entropy_with_logits(hit_logits, hits, reduction="none").sum(-1)
            voxel_term = (squared[:, : self.n_voxels] * hits).sum(-1)
            reconstruction = bce + voxel_term + squared[:, self.n_voxels :].sum(-1)
        return (reconstruction + self.beta * kl).mean()

    def _generate(self, latent: Tensor, incident_energies_mev: Tensor, sample_hits: bool,
                  layer_energies: Tensor | None = None) -> Tensor:
        decoded, hit_logits = self.decode(latent, incident_energies_mev)
        hits = None
        if hit_logits is not None:
            probabilities = torch.sigmoid(hit_logits)
            hits = torch.bernoulli(probabilities).bool() if sample_hits else probabilities > 0.5
        return self.postprocess(decoded, incident_energies_mev, hits, layer_energies)

    @torch.no_grad()
    def reconstruct(self, batch: Batch, sample_hits: bool = False) -> Tensor:
        """Showers (B, V) MeV decoded from the posterior mean (hits: p > 0.5 unless `sample_hits`)."""
        mean, _ = self.encode(batch)
        return self._generate(mean, incident_1d(batch["incident_energies"]), sample_hits)

    @torch.no_grad()
    def sample(self, incident_energies: Tensor, layer_energies: Tensor | None = None) -> Batch:
        """Showers from latent z ~ N(0, 1): {"showers": (B, V) MeV, "incident_energies": (B,) MeV}.

        `layer_energies` (B, L) MeV, e.g. sampled by a Flow-I, make each layer sum to them: the VAE then only
        distributes a given layer energy over the layer's voxels (the CaloFlow split; `caloray generate
        --layer-model`)."""
        incident_energies = incident_1d(incident_energies)
        reference = self.feature_mean
        latent = torch.randn(
            incident_energies.shape[0], self.latent_dim, dtype=reference.dtype, device=reference.device
        )
        showers = self._generate(latent, incident_energies, sample_hits=True, layer_energies=layer_energies)
        return {"showers": showers, "incident_energies": incident_energies}

    def noise_shapes(self) -> dict[str, tuple[int, str]]:
        """The latent draw, plus one uniform per voxel for the Bernoulli variant's hits."""
        shapes = {"latent_noise": (self.latent_dim, "normal")}
        if self.variant == "bernoulli":
            shapes["hit_noise"] = (self.n_voxels, "uniform")
        return shapes

    def sample_from_noise(
        self, incident_energies: Tensor, latent_noise: Tensor, hit_noise: Tensor | None = None
    ) -> Batch:
        """`sample` with its draws given: latent_noise (B, latent_dim) ~ N(0, 1) and, for the Bernoulli variant,
        hit_noise (B, V) ~ U[0, 1) (voxel hit iff hit_noise < sigmoid(logit), i.e. a Bernoulli draw)."""
        incident_energies = incident_1d(incident_energies)
        decoded, hit_logits = self.decode(latent_noise, incident_energies)
        hits = None
        if hit_logits is not None:
            if hit_noise is None:
                raise ValueError("the Bernoulli ShowerVAE needs hit_noise (B, V) uniform in [0, 1)")
            hits = hit_noise < torch.sigmoid(hit_logits)
        return {"showers": self.postprocess(decoded, incident_energies, hits), "incident_energies": incident_energies}
