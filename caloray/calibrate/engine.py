"""MLE calibration of showers with a trained density model (one flow or an ensemble), batched on a device."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from caloray.anomaly.scores import anomaly_scores
from caloray.calibrate.mle import FLOAT32_STENCIL, LogLikelihood, MLEResult, MLESettings, find_mle
from caloray.models.base import Surrogate
from caloray.models.ensemble import Ensemble
from caloray.models.inn import ShowerINN
from caloray.models.stacked import stacked_log_prob_features

#: Candidate rows (showers × candidate energies) per model call on a CPU. The member-batched Flow-I ensemble
#: keeps (members × rows × hidden) activations; at ~1k rows they stay in a core's cache, while 100k-row
#: calls run several times slower per row. A GPU wants the opposite: calls as large as memory allows.
ROWS_PER_CALL = {"cpu": 1024, "cuda": 1 << 20}


def model_log_likelihood(model: Surrogate, features: Tensor, rows_per_call: int | None = None) -> LogLikelihood:
    """ℓ(z, rows) = log p(features[rows] | z) via the model's batched `log_prob_features`.

    `features` are the model's inputs per shower (e.g. layer energies (B, L) MeV for Flow-I). Ensembles
    combine members as log of the mean likelihood (spec §1): Flow-I ensembles with all members in one
    batched pass (`caloray.models.stacked`), other models through their own `log_prob_features`.
    Each call is split into blocks of about `rows_per_call` candidate rows (default: `ROWS_PER_CALL` of the
    features' device type).
    """
    evaluate = stacked_log_prob_features(model) or model.log_prob_features
    dtype = next(model.parameters()).dtype
    if rows_per_call is None:
        rows_per_call = ROWS_PER_CALL.get(features.device.type, ROWS_PER_CALL["cuda"])

    @torch.no_grad()
    def log_likelihood(z: Tensor, rows: Tensor) -> Tensor:
        per_call = max(1, rows_per_call // max(1, z.shape[1]))
        blocks = [evaluate(features[rows[start:start + per_call]], z[start:start + per_call].to(dtype))
                  for start in range(0, len(rows), per_call)]
        return torch.cat(blocks).to(torch.float64)

    return log_likelihood


def shower_features(model: Surrogate, showers_mev: Tensor, *, add_noise: bool = False,
                    generator: torch.Generator | None = None) -> Tensor:
    """The model's per-shower inputs: Flow-I layer energies (B, L) MeV; for a ShowerINN (or Bayesian INN) the
    showers (B, V) MeV themselves, without noise (its likelihood maps zero voxels through the α-logit, the
    same at every candidate energy). Ensembles use member 0's map, which all members share by construction."""
    feature_model = model.members[0] if isinstance(model, Ensemble) else model
    if isinstance(feature_model, ShowerINN):
        return showers_mev
    return feature_model.layer_energies(showers_mev, add_noise=add_noise, generator=generator)


def feature_log_jacobian(model: Surrogate, features: Tensor) -> Tensor:
    """log|dy/dx| of the model's feature preprocessing per shower, (B,): turns a density of the
    preprocessed features into one per physical unit (MeV^L) — it depends on x only, never on z."""
    feature_model = model.members[0] if isinstance(model, Ensemble) else model
    if isinstance(feature_model, ShowerINN):  # its log_prob_features is already per physical unit
        return torch.zeros(features.shape[0], dtype=features.dtype, device=features.device)
    return feature_model.layer_transform.log_abs_det_jacobian(features).sum(-1)


def calibrate_features(model: Surrogate, features: Tensor, energy_min_mev: float, energy_max_mev: float,
                       settings: MLESettings | None = None) -> MLEResult:
    """E_pred, interval, resolution, asymmetry and flags (MeV) for showers given as model features."""
    if not torch.isfinite(features).all():
        raise ValueError("calibrate_features: features contain NaN or inf (validate inputs first)")
    settings = settings or MLESettings()
    if settings.stencil is None and next(model.parameters()).dtype != torch.float64:
        # float32 likelihoods are noisy at the 1e-5 level: a wider stencil keeps the slopes accurate.
        settings = dataclasses.replace(settings, stencil=FLOAT32_STENCIL)
    return find_mle(model_log_likelihood(model, features), features.shape[0], energy_min_mev, energy_max_mev,
                    settings, device=features.device)


def calibrate_showers(model: Surrogate, showers_mev: np.ndarray, energy_min_mev: float, energy_max_mev: float,
                      settings: MLESettings | None = None, *, batch_size: int = 1024, add_noise: bool = True,
                      generator: torch.Generator | None = None, device: torch.device | None = None,
                      ) -> dict[str, np.ndarray]:
    """Every per-shower calibration output of showers (N, V) MeV, computed in batches of `batch_size` on `device`
    (default: the model's): e_pred_mev, z_lo_mev, z_hi_mev, resolution_mev (MeV), asymmetry, flags and
    anomaly_score (spec §5 with E_rec = E_pred, nats), each (N,). `add_noise`: the dequantization noise of the
    model's features, drawn from `generator`."""
    device = device or next(model.parameters()).device
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("e_pred_mev", "z_lo_mev", "z_hi_mev", "resolution_mev",
                                                         "asymmetry", "flags", "anomaly_score")}
    for lo in range(0, len(showers_mev), batch_size):
        block = torch.as_tensor(showers_mev[lo:lo + batch_size], dtype=torch.float64)
        features = shower_features(model, block, add_noise=add_noise, generator=generator).to(device)
        result = calibrate_features(model, features, energy_min_mev, energy_max_mev, settings)
        log_likelihood = model_log_likelihood(model, features)
        jacobian = feature_log_jacobian(model, features).double()
        # The anomaly score as a density per MeV^L of layer energy: the feature density times the preprocessing
        # Jacobian (independent of z), so scores of different models' features compare.
        score = anomaly_scores(_per_mev(log_likelihood, jacobian), result.e_pred)
        for key, value in (("e_pred_mev", result.e_pred), ("z_lo_mev", result.z_lo), ("z_hi_mev", result.z_hi),
                           ("resolution_mev", result.resolution), ("asymmetry", result.asymmetry),
                           ("flags", result.flags), ("anomaly_score", score)):
            out[key].append(value.cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _per_mev(log_likelihood: LogLikelihood, jacobian: Tensor) -> LogLikelihood:
    return lambda z, rows: log_likelihood(z, rows) + jacobian[rows, None]
