"""Coarse graining: index tables, exact coarse energies, neighbours at the edges and across the α wrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.geometry import get_geometry
from caloray.superres import (
    NEIGHBOUR_DIRECTIONS,
    CoarseGrid,
    coarse_energies,
    fine_groups,
    fine_layer_energies,
    scatter_fine_groups,
)

DS2 = get_geometry("ds2")


@pytest.fixture(scope="module")
def grid_a() -> CoarseGrid:
    return CoarseGrid.from_geometry(DS2, "A")


def test_sizes_of_the_ds2_choices(grid_a):
    grid_b = CoarseGrid.from_geometry(DS2, "B")
    assert (grid_a.n_coarse, grid_a.group_size, grid_a.coarse_shape) == (648, 10, (9, 8, 9))
    assert (grid_b.n_coarse, grid_b.group_size, grid_b.coarse_shape) == (540, 12, (45, 4, 3))
    assert grid_a.n_voxels == DS2.n_voxels == 6480


@pytest.mark.parametrize("choice", ["A", "B"])
def test_fine_of_coarse_is_a_partition_in_ascending_order(choice):
    grid = CoarseGrid.from_geometry(DS2, choice)
    table = grid.fine_of_coarse
    assert np.array_equal(np.sort(table.reshape(-1)), np.arange(DS2.n_voxels))
    assert np.all(np.diff(table, axis=1) > 0)
    coarse_map = DS2.coarse_map(*grid.groups)
    assert np.array_equal(coarse_map[table], np.repeat(np.arange(grid.n_coarse)[:, None], grid.group_size, 1))


def test_choice_a_fine_order_is_layer_then_alpha(grid_a):
    # coarse voxel (layer 1, α 7, r 3): fine layers 5..9, fine α 14, 15, fine r 3
    c = (1 * 8 + 7) * 9 + 3
    expected = [(layer * 16 + alpha) * 9 + 3 for layer in range(5, 10) for alpha in (14, 15)]
    assert grid_a.fine_of_coarse[c].tolist() == expected


@pytest.mark.parametrize("choice", ["A", "B"])
def test_coarse_energies_are_exact_sums(choice):
    grid = CoarseGrid.from_geometry(DS2, choice)
    rng = np.random.default_rng(1)
    showers = rng.integers(0, 2**20, size=(3, DS2.n_voxels)).astype(np.float64)
    expected = np.zeros((3, grid.n_coarse))
    np.add.at(expected, (slice(None), DS2.coarse_map(*grid.groups)), showers)
    got = coarse_energies(torch.from_numpy(showers), grid)
    assert got.dtype == torch.float64
    assert np.array_equal(got.numpy(), expected)


def test_scatter_inverts_grouping_and_layer_energies(grid_a):
    showers = torch.rand(2, DS2.n_voxels, dtype=torch.float64)
    groups = fine_groups(showers, grid_a)
    assert groups.shape == (2, 648, 10)
    assert torch.equal(scatter_fine_groups(groups, grid_a), showers)
    layers = fine_layer_energies(showers, grid_a)
    expected = np.zeros((2, 45))
    np.add.at(expected, (slice(None), DS2.voxel_layer), showers.numpy())
    assert np.allclose(layers.numpy(), expected, rtol=1e-13)


def _coarse_index(layer: int, alpha: int, r: int) -> int:
    return (layer * 8 + alpha) * 9 + r


def test_neighbours_at_the_edges_and_across_the_alpha_wrap(grid_a):
    assert NEIGHBOUR_DIRECTIONS == ("r-1", "r+1", "alpha-1", "alpha+1", "z-1", "z+1")
    nb = grid_a.neighbours
    assert nb.shape == (648, 6)
    # first layer, α = 0, r = 0: no r−1, no z−1, α−1 wraps to α = 7
    assert nb[_coarse_index(0, 0, 0)].tolist() == [
        -1, _coarse_index(0, 0, 1), _coarse_index(0, 7, 0), _coarse_index(0, 1, 0), -1, _coarse_index(1, 0, 0)
    ]
    # last layer, α = 7, last r: no r+1, no z+1, α+1 wraps to α = 0
    assert nb[_coarse_index(8, 7, 8)].tolist() == [
        _coarse_index(8, 7, 7), -1, _coarse_index(8, 6, 8), _coarse_index(8, 0, 8), _coarse_index(7, 7, 8), -1
    ]
    # interior
    assert nb[_coarse_index(4, 3, 4)].tolist() == [
        _coarse_index(4, 3, 3), _coarse_index(4, 3, 5), _coarse_index(4, 2, 4), _coarse_index(4, 4, 4),
        _coarse_index(3, 3, 4), _coarse_index(5, 3, 4),
    ]
    layer, _alpha, r = grid_a.coarse_coordinates
    assert np.array_equal(nb[:, 0] == -1, r == 0) and np.array_equal(nb[:, 1] == -1, r == 8)
    assert np.array_equal(nb[:, 4] == -1, layer == 0) and np.array_equal(nb[:, 5] == -1, layer == 8)
    assert np.all(nb[:, 2:4] >= 0)


@pytest.mark.parametrize("choice", ["A", "B"])
def test_neighbour_relation_is_symmetric(choice):
    nb = CoarseGrid.from_geometry(DS2, choice).neighbours
    opposite = [1, 0, 3, 2, 5, 4]
    for d in range(6):
        inside = np.flatnonzero(nb[:, d] >= 0)
        assert np.array_equal(nb[nb[inside, d], opposite[d]], inside)


def test_single_alpha_bin_has_no_alpha_neighbours():
    grid = CoarseGrid(n_layers=2, n_alpha=4, n_r=3, r_group=1, alpha_group=4, layer_group=1)
    assert np.all(grid.neighbours[:, 2:4] == -1)


def test_bad_grouping_is_rejected():
    with pytest.raises(ValueError, match="does not divide"):
        CoarseGrid(n_layers=45, n_alpha=16, n_r=9, r_group=2, alpha_group=2, layer_group=5)
