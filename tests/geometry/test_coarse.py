"""Coarse-graining maps group fine voxels as specified."""

import numpy as np
import pytest

from caloray.errors import GeometryError
from caloray.geometry import DS2_COARSE_CHOICES, get_geometry


@pytest.mark.parametrize(("choice", "n_coarse", "group"), [("A", 648, 10), ("B", 540, 12)])
def test_ds2_choices(choice, n_coarse, group):
    g = get_geometry("ds2")
    coarse = g.coarse_map(*DS2_COARSE_CHOICES[choice])
    counts = np.bincount(coarse)
    assert len(counts) == n_coarse
    assert np.all(counts == group)
    # coarse sums of a random shower equal the sums of their fine voxels
    rng = np.random.default_rng(1)
    shower = rng.random(g.n_voxels)
    coarse_energy = np.bincount(coarse, weights=shower, minlength=n_coarse)
    assert coarse_energy.sum() == pytest.approx(shower.sum())


def test_choice_a_groups_two_alpha_bins_and_five_layers():
    g = get_geometry("ds2")
    coarse = g.coarse_map(1, 2, 5)
    members = np.flatnonzero(coarse == 0)
    assert sorted(set(g.voxel_layer[members])) == [0, 1, 2, 3, 4]
    assert sorted(set(g.voxel_alpha_bin[members])) == [0, 1]
    assert set(g.voxel_r_bin[members]) == {0}


def test_bad_groups_are_errors():
    g = get_geometry("ds2")
    with pytest.raises(GeometryError, match="alpha group 3 does not divide 16"):
        g.coarse_map(1, 3, 5)
    with pytest.raises(GeometryError, match="same binning per layer"):
        get_geometry("ds1-photons").coarse_map(1, 1, 1)
    with pytest.raises(GeometryError, match="cartesian"):
        get_geometry("ecal-hcal").coarse_map(1, 1, 1)
