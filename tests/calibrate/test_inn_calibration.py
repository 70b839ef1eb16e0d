"""MLE calibration with a ShowerINN: the engine's E_pred against the argmax of a dense likelihood grid."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from caloray.calibrate import MLESettings
from caloray.calibrate.engine import calibrate_features, calibrate_showers, feature_log_jacobian, shower_features
from caloray.models import ShowerINN

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from models_toy_data import TOY_VOXEL_LAYER, make_toy_batch

E_MIN, E_MAX = 1e3, 1e5
GRID = 4001


@pytest.fixture(scope="module")
def trained_inn() -> ShowerINN:
    """A small INN fitted for 150 Adam steps on toy showers (≈ 2 s), in float64 for the engine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ShowerINN(TOY_VOXEL_LAYER, blocks=3, hidden_features=[16])
    train = make_toy_batch(1024, seed=1)
    model.fit_preprocessing(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(2)
    for _ in range(150):
        rows = torch.randint(0, 1024, (128,), generator=generator)
        optimizer.zero_grad()
        model.loss({key: value[rows] for key, value in train.items()}).backward()
        optimizer.step()
    torch.set_num_threads(previous)
    return model.double().eval()


def test_engine_mle_is_the_argmax_of_a_dense_likelihood_grid(trained_inn: ShowerINN) -> None:
    showers = make_toy_batch(16, seed=7, dtype=torch.float64)["showers"]
    features = shower_features(trained_inn, showers)
    assert torch.equal(features, showers) and torch.all(feature_log_jacobian(trained_inn, features) == 0)
    result = calibrate_features(trained_inn, features, E_MIN, E_MAX, MLESettings())
    grid = torch.logspace(math.log10(E_MIN), math.log10(E_MAX), GRID, dtype=torch.float64)
    with torch.no_grad():
        log_likelihood = trained_inn.log_prob_features(showers, grid.expand(len(showers), GRID))
    best = grid[log_likelihood.argmax(-1)]
    interior = (result.e_pred > 1.01 * E_MIN) & (result.e_pred < E_MAX / 1.01)
    assert interior.sum() >= len(showers) // 2, "most maxima must be interior (not clamped to the range)"
    step = math.log(E_MAX / E_MIN) / (GRID - 1)  # grid spacing in log E
    assert torch.all(torch.abs(torch.log(result.e_pred / best)) <= step + 1e-9), (result.e_pred, best)
    # the engine's maximum is at least as high as the grid's (it refines between grid points)
    assert torch.all(result.log_likelihood_max >= log_likelihood.max(-1).values - 1e-6)


def test_calibrate_showers_works_with_an_inn(trained_inn: ShowerINN) -> None:
    showers = make_toy_batch(16, seed=7, dtype=torch.float64)["showers"].numpy()
    columns = calibrate_showers(trained_inn, showers, E_MIN, E_MAX, batch_size=8,
                                generator=torch.Generator().manual_seed(0))
    direct = calibrate_features(trained_inn, torch.as_tensor(showers), E_MIN, E_MAX)
    np.testing.assert_allclose(columns["e_pred_mev"], direct.e_pred.numpy(), rtol=1e-9)
    np.testing.assert_allclose(columns["anomaly_score"], -direct.log_likelihood_max.numpy(), rtol=1e-9)
