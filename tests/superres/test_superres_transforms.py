"""Preprocessing transforms: exact round trips, serialization, energy conservation of the inverse, cut, noise."""

from __future__ import annotations

import json

import pytest
import torch

from caloray.superres import (
    ConditionScaling,
    FineFractionLogit,
    LinearScale,
    StickBreakingLogit,
    apply_threshold,
    coarse_energies,
    dequantize_fine,
    fine_layer_energies,
    fit_coarse_energy_max,
    raw_conditions,
)


def _fine_and_coarse(n: int = 500, g: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    fine = torch.rand(n, g, generator=gen, dtype=torch.float64) ** 4 * 100.0
    fine[torch.rand(n, g, generator=gen) < 0.3] = 0.0
    fine[:, 0] += 0.02  # every coarse voxel non-empty
    return fine, fine.sum(-1)


@pytest.mark.parametrize(("fractions", "width", "tolerance"),
                         [(FineFractionLogit, 10, 1e-10), (StickBreakingLogit, 9, 1e-9)])
def test_fraction_features_round_trip_is_exact(fractions, width, tolerance):
    fine, coarse = _fine_and_coarse()
    transform = fractions(alpha=1e-6)
    y = transform(fine, coarse)
    assert y.shape == (500, width) and y.min() >= -13.82 and y.max() <= 13.82
    assert torch.allclose(transform.inverse(y, coarse), fine, rtol=tolerance, atol=tolerance)
    rebuilt = fractions.from_config(json.loads(json.dumps(transform.config())))
    assert torch.equal(rebuilt(fine, coarse), y)


def test_fraction_logit_inverse_conserves_the_coarse_energy_for_any_logits():
    coarse = torch.rand(1000, dtype=torch.float64) * 50.0
    y = torch.randn(1000, 10, dtype=torch.float64) * 10.0
    y[0] = -50.0  # every fraction clips to 0 → uniform split
    fine = FineFractionLogit().inverse(y, coarse)
    assert fine.min() >= 0
    assert torch.allclose(fine.sum(-1), coarse, rtol=1e-13, atol=0)
    assert torch.allclose(fine[0], coarse[0] / 10 * torch.ones(10, dtype=torch.float64))


def test_stick_breaking_fractions_are_shares_of_the_remainders():
    fine = torch.tensor([[1.0, 1.0, 2.0], [0.0, 3.0, 0.0], [2.0, 0.0, 0.0]], dtype=torch.float64)
    u = StickBreakingLogit(alpha=1e-6).logit.inverse(StickBreakingLogit(alpha=1e-6)(fine, fine.sum(-1)))
    expected = torch.tensor([[1 / 4, 1 / 3], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # 0/0 remainder → 0
    assert torch.allclose(u, expected, atol=1e-12)


def test_stick_breaking_inverse_conserves_the_coarse_energy_for_any_logits():
    coarse = torch.rand(1000, dtype=torch.float64) * 50.0
    y = torch.randn(1000, 9, dtype=torch.float64) * 10.0
    y[0], y[1] = -50.0, 50.0  # all u = 0: the last voxel takes everything; all u = 1: the first one does
    fine = StickBreakingLogit().inverse(y, coarse)
    assert fine.shape == (1000, 10) and fine.min() >= 0
    assert torch.allclose(fine.sum(-1), coarse, rtol=1e-13, atol=0)
    assert torch.allclose(fine[0, -1], coarse[0]) and torch.allclose(fine[1, 0], coarse[1])


def test_condition_scaling_round_trip_and_config(tiny_grid):
    showers = torch.rand(7, tiny_grid.n_voxels, dtype=torch.float64) * 10.0
    showers[showers < 3.0] = 0.0
    coarse = coarse_energies(showers, tiny_grid)
    raw = raw_conditions(tiny_grid, coarse, torch.full((7,), 2e4, dtype=torch.float64),
                         fine_layer_energies(showers, tiny_grid))
    scaling = ConditionScaling(n_layer_columns=2, coarse_energy_max_mev=fit_coarse_energy_max(coarse))
    scaled = scaling(raw)
    assert torch.isfinite(scaled).all() and scaled[:, 0].max() < 0
    assert torch.allclose(scaling.inverse(scaled), raw, rtol=1e-12, atol=1e-12)
    rebuilt = ConditionScaling.from_config(json.loads(json.dumps(scaling.config())))
    assert torch.equal(rebuilt(raw), scaled)


def test_linear_scale_round_trip():
    x = torch.rand(100, dtype=torch.float64) * 1e5
    scale = LinearScale(65e3)
    assert torch.allclose(scale.inverse(scale(x)), x, rtol=1e-15)
    assert LinearScale.from_config(scale.config()).scale == 65e3
    with pytest.raises(ValueError):
        LinearScale(0.0)


def test_threshold_keeps_the_removed_energy():
    fine = torch.tensor([[0.01, 0.015, 0.2, 0.0], [0.014999, 1.0, 0.003, 2.0]], dtype=torch.float64)
    kept, removed = apply_threshold(fine, 0.015)
    assert kept.tolist() == [[0.0, 0.015, 0.2, 0.0], [0.0, 1.0, 0.0, 2.0]]
    assert torch.allclose(kept.sum(-1) + removed, fine.sum(-1), rtol=1e-15)


def test_fine_noise_is_uniform_in_the_stated_width():
    fine = torch.zeros(20000, 10, dtype=torch.float64)
    noisy = dequantize_fine(fine, noise_kev=0.1, generator=torch.Generator().manual_seed(0))
    assert noisy.min() >= 0 and noisy.max() <= 1e-4
    assert noisy.mean().item() == pytest.approx(0.5e-4, rel=0.01)
    assert torch.equal(dequantize_fine(fine, noise_kev=0.0), fine)
