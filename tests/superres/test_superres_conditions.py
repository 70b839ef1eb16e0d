"""Conditional inputs: a hand-computed choice-A coarse voxel, the strict variant, sizes, scaling and noise."""

from __future__ import annotations

import math

import pytest
import torch

from caloray.geometry import get_geometry
from caloray.superres import (
    CoarseGrid,
    ConditionScaling,
    coarse_energies,
    fine_layer_energies,
    jitter_coarse_energy,
    n_conditions,
    raw_conditions,
)

DS2 = get_geometry("ds2")
GRID_A = CoarseGrid.from_geometry(DS2, "A")
TARGET = (1 * 8 + 7) * 9 + 0  # coarse voxel (layer 1, α 7, r 0): fine layers 5–9, fine α 14–15, r 0


def _v(layer: int, alpha: int, r: int) -> int:
    return (layer * 16 + alpha) * 9 + r


def _hand_shower() -> torch.Tensor:
    shower = torch.zeros(DS2.n_voxels, dtype=torch.float64)
    shower[_v(5, 14, 0)] = 1.0    # target
    shower[_v(9, 15, 0)] = 2.0    # target
    shower[_v(6, 14, 1)] = 4.0    # r+1 neighbour (1, 7, 1)
    shower[_v(7, 13, 0)] = 8.0    # α−1 neighbour (1, 6, 0)
    shower[_v(5, 0, 0)] = 16.0    # α+1 neighbour across the wrap (1, 0, 0)
    shower[_v(4, 15, 0)] = 32.0   # z−1 neighbour (0, 7, 0)
    shower[_v(10, 14, 0)] = 64.0  # z+1 neighbour (2, 7, 0)
    shower[_v(5, 3, 5)] = 128.0   # elsewhere in fine layer 5
    return shower


def _expected_row(scale: float, incident: float, oracle: bool) -> list[float]:
    energies = [3.0 * scale, incident]
    if oracle:  # fine layers 5..9: 1 + 16 + 128, 4, 8, 0, 2
        energies += [145.0 * scale, 4.0 * scale, 8.0 * scale, 0.0, 2.0 * scale]
    energies += [0.0, 4.0 * scale, 8.0 * scale, 16.0 * scale, 32.0 * scale, 64.0 * scale]  # −r, +r, −α, +α, −z, +z
    onehot_layer = [0.0] * 9
    onehot_layer[1] = 1.0
    onehot_r = [1.0] + [0.0] * 8
    return energies + onehot_layer + onehot_r


@pytest.mark.parametrize("oracle", [True, False])
def test_choice_a_inputs_of_a_hand_built_shower(oracle):
    shower = _hand_shower()
    showers = torch.stack([shower, 2.0 * shower])  # shower-major rows: the second shower is scaled by 2
    incident = torch.tensor([5000.0, 7000.0], dtype=torch.float64)
    layers = fine_layer_energies(showers, GRID_A) if oracle else None
    raw = raw_conditions(GRID_A, coarse_energies(showers, GRID_A), incident, layers)
    assert raw.shape == (2 * 648, 31 if oracle else 26)
    assert raw[TARGET].tolist() == _expected_row(1.0, 5000.0, oracle)
    assert raw[648 + TARGET].tolist() == _expected_row(2.0, 7000.0, oracle)


def test_numbers_of_inputs_follow_table_4_1():
    grid_b = CoarseGrid.from_geometry(DS2, "B")
    assert n_conditions(GRID_A, oracle=True) == 31 and n_conditions(GRID_A, oracle=False) == 26
    assert n_conditions(grid_b, oracle=True) == 57 and n_conditions(grid_b, oracle=False) == 56
    showers = torch.rand(2, DS2.n_voxels, dtype=torch.float64)
    raw = raw_conditions(grid_b, coarse_energies(showers, grid_b), torch.ones(2), fine_layer_energies(showers, grid_b))
    assert raw.shape == (2 * 540, 57)
    assert torch.equal(raw[:, 2], fine_layer_energies(showers, grid_b).repeat_interleave(12, dim=1).reshape(-1))


def test_scaling_of_the_hand_built_row():
    raw = torch.tensor([_expected_row(1.0, 5000.0, oracle=True)], dtype=torch.float64)
    scaling = ConditionScaling(n_layer_columns=5, coarse_energy_max_mev=1000.0)
    scaled = scaling(raw)[0]
    assert scaled[0].item() == pytest.approx(math.log10((3.0 + 0.5e-3) / 1000.0), rel=1e-12)
    assert scaled[1].item() == pytest.approx(math.log10(5000.0) - 4.5, rel=1e-12)
    assert scaled[2].item() == pytest.approx(145.0 / 65e3, rel=1e-12)
    assert scaled[7].item() == pytest.approx(math.log10(0.5e-3 / 1000.0), rel=1e-12)  # missing r−1 neighbour
    assert scaled[12].item() == pytest.approx(math.log10((64.0 + 0.5e-3) / 1000.0), rel=1e-12)
    assert torch.equal(scaled[13:], raw[0, 13:])


def test_coarse_jitter_touches_only_the_coarse_energy():
    raw = torch.rand(1000, 31, dtype=torch.float64)
    noisy = jitter_coarse_energy(raw, noise_kev=1.0, generator=torch.Generator().manual_seed(0))
    shift = noisy[:, 0] - raw[:, 0]
    assert torch.equal(noisy[:, 1:], raw[:, 1:])
    assert shift.min() >= -0.5e-3 and shift.max() <= 0.5e-3 and shift.std() > 1e-4


def test_oracle_layers_must_match_the_grid():
    with pytest.raises(ValueError, match="coarse voxels"):
        raw_conditions(GRID_A, torch.zeros(1, 100), torch.ones(1))
