"""MLE calibration of showers with a trained density model (one flow or an ensemble), batched on a device."""

from __future__ import annotations

import torch
from torch import Tensor

from caloray.calibrate.mle import LogLikelihood, MLEResult, MLESettings, find_mle
from caloray.models.base import Surrogate
from caloray.models.ensemble import Ensemble


def model_log_likelihood(model: Surrogate, features: Tensor) -> LogLikelihood:
    """ℓ(z, rows) = log p(features[rows] | z) via the model's batched `log_prob_features`.

    `features` are the model's inputs per shower (e.g. layer energies (B, L) MeV for Flow-I). Ensembles
    combine members as log of the mean likelihood (spec §1) inside `log_prob_features`.
    """

    @torch.no_grad()
    def log_likelihood(z: Tensor, rows: Tensor) -> Tensor:
        dtype = next(model.parameters()).dtype
        return model.log_prob_features(features[rows], z.to(dtype)).to(torch.float64)

    return log_likelihood


def shower_features(model: Surrogate, showers_mev: Tensor, *, add_noise: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
    """The model's per-shower inputs (e.g. Flow-I layer energies (B, L) MeV); ensembles use member 0's map,
    which all members share by construction (same kind and geometry)."""
    feature_model = model.members[0] if isinstance(model, Ensemble) else model
    return feature_model.layer_energies(showers_mev, add_noise=add_noise, generator=generator)


def feature_log_jacobian(model: Surrogate, features: Tensor) -> Tensor:
    """log|dy/dx| of the model's feature preprocessing per shower, (B,): turns a density of the
    preprocessed features into one per physical unit (MeV^L) — it depends on x only, never on z."""
    feature_model = model.members[0] if isinstance(model, Ensemble) else model
    return feature_model.layer_transform.log_abs_det_jacobian(features).sum(-1)


def calibrate_features(model: Surrogate, features: Tensor, energy_min_mev: float, energy_max_mev: float,
                       settings: MLESettings | None = None) -> MLEResult:
    """E_pred, interval, resolution, asymmetry and flags (MeV) for showers given as model features."""
    if not torch.isfinite(features).all():
        raise ValueError("calibrate_features: features contain NaN or inf (validate inputs first)")
    return find_mle(model_log_likelihood(model, features), features.shape[0], energy_min_mev, energy_max_mev,
                    settings, device=features.device)
