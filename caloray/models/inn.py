"""ShowerINN and the Bayesian INN: conditional RQS coupling flows on all voxels plus the layer-energy
"extra dimensions" (thesis Sec. 3.3.5, 4.1–4.2; spec §6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from caloray.models.base import Batch, Surrogate
from caloray.models.bayesian import kl_divergence, weight_draw
from caloray.models.chunks import for_each_chunk
from caloray.models.coupling_flow import conditional_spline_coupling, coupling_log_prob, coupling_sample
from caloray.models.features import check_voxel_layer, incident_1d, layer_sums
from caloray.models.transforms import (
    GAUSSIANIZE_FIT_SEED,
    AlphaLogit,
    ExtraDimensions,
    LayerNormalization,
    MarginalGaussianization,
    incident_energy_transform,
)
from caloray.models.vae import MIN_FEATURE_STD

#: How the logit features are brought to unit scale before the flow (`ShowerINN(marginals=...)`).
MARGINALS = ("standardize", "gaussianize")

#: Showers per pass of the preprocessing inverse when sampling (shared among threads like the flow's chunks).
POSTPROCESS_CHUNK = 1024


class ShowerINN(Surrogate):
    """p(showers | E_inc) as an RQS coupling flow over D = V + L features (thesis INN preprocessing, Sec. 4.1).

    Features per shower (V voxels, L layers):

    - voxel energies divided by their layer energy (each non-empty layer sums to 1);
    - the extra dimensions u_0 = E_tot / (`energy_scale` · E_inc), u_i = E_{i−1} / Σ_{j≥i−1} E_j, clamped to
      [0, 1] (so the flow learns the layer energies and their normalisation by E_inc);
    - uniform noise in [0, `noise_width`] on all of them (training only, resampled per batch; it fills the
      zeros as in the thesis), α-regularized logit (α = `alpha`), then per feature either a standardization
      (`marginals="standardize"`, the thesis: mean/std buffers) or a quantile transform onto N(0, 1)
      (`marginals="gaussianize"`, `knots` knots: `MarginalGaussianization`, which spreads each voxel's
      dequantized zeros over its share of the Gaussian instead of leaving a spike the flow smears; with
      `energy_bins` > 1 fitted per incident-energy bin and interpolated in log E_inc, since that share depends
      on E_inc), fitted once on a training sample (`fit_preprocessing`; identity before).

    Condition: log10(E_inc / 10 GeV). Flow: `blocks` RQS coupling blocks (`bins` bins on [−bound, bound]) with
    subnets of `hidden_features` (ReLU), evaluated directly (`coupling_log_prob`, `coupling_sample`); the default is
    6 blocks of 1×64 with 8 bins (sampling speed: `bench/bench_inn.py`), the thesis used 12 blocks of 3×256.

    Generation inverts the preprocessing exactly: fractions below `noise_width` (the noise region) are set to 0
    except the largest voxel of each layer, each layer is renormalized and multiplied by the layer energies
    decoded from u, so the layer sums equal the decoded layer energies and no energy is negative.

    `log_prob` is the density of the standardized logit features; `physical_units=True` adds the element-wise
    Jacobians down to (fractions, u_1 … u_{L−1}, E_tot [MeV]), a density whose E_inc dependence is all in the
    model (what the MLE calibration compares between candidate energies).
    """

    kind = "shower-inn"
    bayesian = False

    def __init__(
        self,
        voxel_layer: Sequence[int],
        blocks: int = 6,
        hidden_features: Sequence[int] = (64,),
        bins: int = 8,
        bound: float = 14.0,
        alpha: float = 1e-6,
        noise_width: float = 1e-6,
        energy_scale: float = 2.0,
        marginals: str = "standardize",
        knots: int = 128,
        energy_bins: int = 1,
    ) -> None:
        super().__init__()
        if noise_width < 0:
            raise ValueError(f"noise_width must be >= 0, got {noise_width}")
        if marginals not in MARGINALS:
            raise ValueError(f"marginals must be one of {', '.join(MARGINALS)}; got {marginals!r}")
        if marginals == "gaussianize" and noise_width <= 0:
            raise ValueError("marginals='gaussianize' needs noise_width > 0 (the zeros must be dequantized)")
        self.marginals = marginals
        self.knots = int(knots)
        self.energy_bins = int(energy_bins)
        self.voxel_layer_list = check_voxel_layer(voxel_layer)
        self.n_layers = max(self.voxel_layer_list) + 1
        self.n_voxels = len(self.voxel_layer_list)
        self.blocks = int(blocks)
        self.hidden_features = [int(h) for h in hidden_features]
        self.bins = int(bins)
        self.bound = float(bound)
        self.alpha = float(alpha)
        self.noise_width = float(noise_width)
        self.energy_scale = float(energy_scale)
        self.register_buffer("voxel_layer", torch.tensor(self.voxel_layer_list, dtype=torch.long), False)
        self.incident_transform = incident_energy_transform()
        self.normalization = LayerNormalization(self.voxel_layer_list)
        self.extra_dimensions = ExtraDimensions(self.energy_scale)
        self.logit = AlphaLogit(self.alpha)
        n_features = self.n_voxels + self.n_layers
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("standardization_fitted", torch.tensor(False))
        if marginals == "gaussianize":
            self.gaussianization = MarginalGaussianization(n_features, self.knots, self.energy_bins)
        self.flow = conditional_spline_coupling(
            features=n_features, context=1, blocks=self.blocks, hidden_features=self.hidden_features,
            bins=self.bins, bound=self.bound, **self._bayesian_kwargs(),
        )

    def _bayesian_kwargs(self) -> dict[str, Any]:
        return {}

    def config(self) -> dict[str, Any]:
        return {
            "voxel_layer": list(self.voxel_layer_list),
            "blocks": self.blocks,
            "hidden_features": list(self.hidden_features),
            "bins": self.bins,
            "bound": self.bound,
            "alpha": self.alpha,
            "noise_width": self.noise_width,
            "energy_scale": self.energy_scale,
            "marginals": self.marginals,
            "knots": self.knots,
            "energy_bins": self.energy_bins,
        }

    # --- preprocessing --------------------------------------------------------------------------

    def unit_features(self, showers_mev: Tensor, incident_energies_mev: Tensor) -> Tensor:
        """(layer fractions (B, V), extra dimensions u (B, L)) concatenated, (B, V + L), clamped to [0, 1]."""
        layer_energies = layer_sums(showers_mev, self.voxel_layer, self.n_layers)
        fractions = self.normalization(showers_mev, layer_energies)
        extra = self.extra_dimensions(layer_energies, incident_energies_mev)
        return torch.cat([fractions, extra], dim=-1).clamp(0.0, 1.0)

    def _add_noise(self, unit: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.noise_width <= 0:
            return unit
        # Stays inside [0, 1]: the logit needs it, and 1 − noise_width is the noise-free maximum.
        noise = torch.rand(unit.shape, generator=generator, dtype=unit.dtype, device=unit.device)
        return unit * (1.0 - self.noise_width) + self.noise_width * noise

    def _to_flow_space(self, logits: Tensor, incident_energies_mev: Tensor) -> tuple[Tensor, Tensor]:
        """(flow features h (B, D), Σ log |dh/d logits| per shower (B,)) of logit features (B, D) at E_inc (B,)."""
        if self.marginals == "gaussianize":
            h, log_slope = self.gaussianization.forward_and_log_abs_det_jacobian(
                logits, self.incident_transform(incident_energies_mev))
            return h, log_slope.sum(-1)
        h = (logits - self.feature_mean) / self.feature_std
        return h, (-torch.log(self.feature_std).sum()).expand(logits.shape[0])

    def _from_flow_space(self, h: Tensor, incident_energies_mev: Tensor) -> Tensor:
        if self.marginals == "gaussianize":
            return self.gaussianization.inverse(h, self.incident_transform(incident_energies_mev))
        return h * self.feature_std + self.feature_mean

    def preprocess(self, showers_mev: Tensor, incident_energies_mev: Tensor, add_noise: bool = False) -> Tensor:
        """Flow features h (B, V + L) of showers (B, V) MeV at E_inc (B,) MeV (logit, then `marginals`)."""
        unit = self.unit_features(showers_mev, incident_energies_mev)
        if add_noise:
            unit = self._add_noise(unit)
        return self._to_flow_space(self.logit(unit), incident_energies_mev)[0]

    def postprocess(self, h: Tensor, incident_energies_mev: Tensor,
                    layer_energies: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(showers (B, V) MeV, layer energies (B, L) MeV) from standardized features h (B, V + L).

        The layer sums of the showers equal the layer energies (up to rounding): the ones decoded from the extra
        dimensions, or `layer_energies` (B, L) MeV when given."""
        logits = self._from_flow_space(h, incident_energies_mev)
        unit = self.logit.inverse(logits).clamp(0.0, 1.0)
        fractions, extra = unit[:, : self.n_voxels], unit[:, self.n_voxels :]
        # Zero threshold in the noise region, never removing a layer's largest voxel (its energy must land; if even
        # that one is at 0 it takes the whole layer). The largest is found in logit space, where nothing clamps.
        voxel_logits = logits[:, : self.n_voxels]
        layer_max = voxel_logits.new_full((voxel_logits.shape[0], self.n_layers), -torch.inf).scatter_reduce(
            1, self.voxel_layer.expand_as(voxel_logits), voxel_logits, "amax", include_self=True
        )
        largest = voxel_logits >= layer_max.index_select(1, self.voxel_layer)
        fractions = torch.where((fractions < self.noise_width) & ~largest, torch.zeros_like(fractions), fractions)
        fractions = torch.where(largest & (fractions <= 0), torch.ones_like(fractions), fractions)
        fractions = self.normalization(fractions, layer_sums(fractions, self.voxel_layer, self.n_layers))
        if layer_energies is None:
            layer_energies = self.extra_dimensions.inverse(extra, incident_energies_mev)
        layer_energies = layer_energies.clamp_min(0.0)
        return self.normalization.inverse(fractions, layer_energies), layer_energies

    @torch.no_grad()
    def fit_standardization(self, showers_mev: Tensor, incident_energies_mev: Tensor) -> None:
        """Fit the `marginals` transform on (a sample of) the training data, a pure function of the sample.

        standardize: per-feature mean/std of the noise-free logits (the noise moves zero-valued features by < 1
        logit unit). gaussianize: quantiles of the dequantized logits, the noise drawn with a fixed seed (the
        zeros' noise band is what gets spread over the Gaussian)."""
        incident = incident_1d(incident_energies_mev)
        unit = self.unit_features(showers_mev, incident)
        if self.marginals == "gaussianize":
            generator = torch.Generator(device=unit.device).manual_seed(GAUSSIANIZE_FIT_SEED)
            self.gaussianization.fit(self.logit(self._add_noise(unit, generator)), self.incident_transform(incident))
            self.standardization_fitted.fill_(True)
            return
        features = self.logit(unit)
        self.feature_mean.copy_(features.mean(0))
        std = features.std(0).nan_to_num(0.0)
        self.feature_std.copy_(torch.where(std < MIN_FEATURE_STD, torch.ones_like(std), std))
        self.standardization_fitted.fill_(True)

    @property
    def needs_preprocessing_fit(self) -> bool:
        return not bool(self.standardization_fitted)

    def fit_preprocessing(self, batch: Batch) -> None:
        self.fit_standardization(batch["showers"], batch["incident_energies"])

    # --- densities and sampling -----------------------------------------------------------------

    def _context(self, incident_energies_mev: Tensor) -> Tensor:
        return self.incident_transform(incident_energies_mev)[:, None]

    def _log_jacobian(self, incident_energies_mev: Tensor, unit: Tensor, log_marginals: Tensor) -> Tensor:
        """Σ log|dh/d(fractions, u_1…, E_tot)| per shower (B,): logit, `marginals` (its per-shower log-Jacobian
        `log_marginals` (B,)) and u_0 = E_tot/(s·E_inc)."""
        log_jacobian = self.logit.log_abs_det_jacobian(unit).sum(-1) + log_marginals
        return log_jacobian - torch.log(self.energy_scale * incident_energies_mev)

    def log_prob(self, batch: Batch, add_noise: bool = False, physical_units: bool = False,
                 weight_draw_seed: int | None = None) -> Tensor:
        """log p(h | E_inc) per shower (B,) (see the class docstring for `physical_units`).

        Bayesian INN: posterior-mean weights in eval mode, or the fixed draw `weight_draw_seed`."""
        showers, incident = batch["showers"], incident_1d(batch["incident_energies"])
        unit = self.unit_features(showers, incident)
        if add_noise:
            unit = self._add_noise(unit)
        h, log_marginals = self._to_flow_space(self.logit(unit), incident)
        with weight_draw(self.flow, weight_draw_seed):
            log_p = coupling_log_prob(self.flow, h, self._context(incident))
        if physical_units:
            log_p = log_p + self._log_jacobian(incident, unit, log_marginals)
        return log_p

    def log_prob_features(self, showers_mev: Tensor, incident_energies_mev: Tensor) -> Tensor:
        """log p(shower | z) per MeV-consistent units (`physical_units=True`) for K candidate E_inc per shower.

        showers (B, V) MeV, incident energies (B, K) MeV (or (B,)) → (B, K) (or (B,)), as the MLE engine needs."""
        squeeze = incident_energies_mev.dim() == 1
        z = incident_energies_mev.unsqueeze(-1) if squeeze else incident_energies_mev
        n_showers, n_candidates = z.shape
        repeated = showers_mev.repeat_interleave(n_candidates, dim=0)
        batch = {"showers": repeated, "incident_energies": z.reshape(-1)}
        log_p = self.log_prob(batch, physical_units=True).reshape(n_showers, n_candidates)
        return log_p.squeeze(-1) if squeeze else log_p

    def loss(self, batch: Batch) -> Tensor:
        """Mean negative log-likelihood of the noisy standardized features (fits the standardization first if
        the trainer has not)."""
        showers, incident = batch["showers"], incident_1d(batch["incident_energies"])
        if self.training and self.needs_preprocessing_fit:
            self.fit_standardization(showers, incident)
        h = self.preprocess(showers, incident, add_noise=True)
        return -coupling_log_prob(self.flow, h, self._context(incident)).mean()

    @torch.no_grad()
    def sample(self, incident_energies: Tensor, weight_draw_seed: int | None = None,
               layer_energies: Tensor | None = None) -> Batch:
        """Showers for E_inc (B,) MeV: {"showers": (B, V) MeV, "layer_energies": (B, L) MeV (the decoded u),
        "incident_energies": (B,) MeV}. Bayesian INN: `weight_draw_seed` fixes one weight draw for the batch.
        `layer_energies` (B, L) MeV, e.g. from a Flow-I, replace the decoded ones: the INN then only distributes
        each layer's energy over its voxels (the CaloFlow split; `caloray generate --layer-model`)."""
        incident = incident_1d(incident_energies)
        with weight_draw(self.flow, weight_draw_seed):
            h = coupling_sample(self.flow, self._context(incident.to(self.feature_mean.dtype)))
        given = None if layer_energies is None else layer_energies.to(h.dtype)
        incident_h = incident.to(h.dtype)
        showers, decoded = h.new_empty(h.shape[0], self.n_voxels), h.new_empty(h.shape[0], self.n_layers)

        def finish(rows: slice) -> None:  # row-wise, so chunks give the same numbers as one pass
            showers[rows], decoded[rows] = self.postprocess(h[rows], incident_h[rows],
                                                            None if given is None else given[rows])

        for_each_chunk(finish, h.shape[0], POSTPROCESS_CHUNK, device=h.device)
        return {"showers": showers, "layer_energies": decoded, "incident_energies": incident}


class BayesianShowerINN(ShowerINN):
    """The Bayesian ShowerINN (thesis Sec. 4.2.4): the last layer of each coupling subnet is Bayesian
    (Gaussian posterior per weight, prior N(0, `prior_std`²), initial log σ² = `init_log_var`).

    Loss: the negative ELBO per shower, NLL + KL(q ‖ prior) / `train_size` (`train_size`: number of training
    showers). Sampling with different `weight_draw_seed`s gives the uncertainty band of any generated histogram
    (`caloray.models.bayesian.histogram_band`); without a seed `sample` draws fresh weights from the global RNG.
    """

    kind = "bayesian-shower-inn"
    bayesian = True

    def __init__(self, voxel_layer: Sequence[int], train_size: int = 100_000, prior_std: float = 1.0,
                 init_log_var: float = -9.0, **kwargs: Any) -> None:
        if train_size <= 0:
            raise ValueError(f"train_size must be > 0, got {train_size}")
        self.train_size = int(train_size)
        self.prior_std = float(prior_std)
        self.init_log_var = float(init_log_var)
        super().__init__(voxel_layer, **kwargs)

    def _bayesian_kwargs(self) -> dict[str, Any]:
        return {"bayesian": True, "prior_std": self.prior_std, "init_log_var": self.init_log_var}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "train_size": self.train_size, "prior_std": self.prior_std,
                "init_log_var": self.init_log_var}

    def kl(self) -> Tensor:
        """KL(q ‖ prior) of all Bayesian weights (nats)."""
        return kl_divergence(self.flow)

    def loss(self, batch: Batch) -> Tensor:
        return super().loss(batch) + self.kl() / self.train_size

    @torch.no_grad()
    def sample(self, incident_energies: Tensor, weight_draw_seed: int | None = None,
               layer_energies: Tensor | None = None) -> Batch:
        if weight_draw_seed is None:  # one fresh draw for the whole batch, from the global RNG (seeded runs repeat)
            weight_draw_seed = int(torch.randint(0, 2**62, ()).item())
        return super().sample(incident_energies, weight_draw_seed=weight_draw_seed, layer_energies=layer_energies)
