"""The trainer fits a model's data-dependent preprocessing (VAE standardization) on the training split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.config import from_dict
from caloray.train import TrainConfig, train_ensemble
from caloray.train.build import default_model_builder, resolve_model_kwargs
from caloray.train.data import prepare_data


def test_vae_standardization_is_fitted_on_the_training_rows(make_dataset, flow_config):
    # preprocessing_rows above the split's size: the fit covers every training row, whatever their order, so a
    # direct fit on the same split is an independent check of what the workers fitted.
    config = from_dict(TrainConfig, flow_config(
        "vae", model={"kind": "shower-vae", "kwargs": {"latent_dim": 4, "hidden_features": [16]}},
        data={"preprocessing_rows": 10000}, epochs=1))
    dataset = make_dataset(240)
    result = train_ensemble(config, dataset)
    (model,) = result.load_members()
    assert bool(model.standardization_fitted)
    assert all(np.isfinite(row["train_loss"]) for row in result.members[0].history)

    fresh = default_model_builder(config.model.kind, resolve_model_kwargs(config))
    rows = prepare_data(dataset, config, fresh).train.take_all()
    fresh.fit_standardization(torch.as_tensor(np.stack([r["showers"] for r in rows])),
                              torch.as_tensor(np.array([r["incident_energies"] for r in rows], dtype=np.float32)))
    torch.testing.assert_close(model.feature_mean, fresh.feature_mean, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.feature_std, fresh.feature_std, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_bayesian_inn_trains_with_its_standardization_fitted(make_dataset, flow_config):
    """`caloray train` path for the (Bayesian) INN: fitted preprocessing, finite ELBO, a direct fit agrees."""
    config = from_dict(TrainConfig, flow_config(
        "binn", model={"kind": "bayesian-shower-inn",
                       "kwargs": {"blocks": 2, "hidden_features": [8], "train_size": 180}},
        data={"preprocessing_rows": 10000}, epochs=1))
    dataset = make_dataset(240)
    result = train_ensemble(config, dataset)
    (model,) = result.load_members()
    assert model.kind == "bayesian-shower-inn" and bool(model.standardization_fitted)
    assert all(np.isfinite(row["train_loss"]) for row in result.members[0].history)
    fresh = default_model_builder(config.model.kind, resolve_model_kwargs(config))
    rows = prepare_data(dataset, config, fresh).train.take_all()
    fresh.fit_standardization(torch.as_tensor(np.stack([r["showers"] for r in rows])),
                              torch.as_tensor(np.array([r["incident_energies"] for r in rows], dtype=np.float32)))
    torch.testing.assert_close(model.feature_mean, fresh.feature_mean, rtol=1e-4, atol=1e-4)
