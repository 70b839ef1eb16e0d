"""Feature maps for two-sample tests: shapes, and values against the high-level features."""

import numpy as np
import pytest

from caloray.features import compute_features
from caloray.features.maps import FEATURE_MAPS, feature_map
from caloray.geometry import get_geometry


@pytest.fixture(scope="module")
def ds2_batch():
    g = get_geometry("ds2")
    rng = np.random.default_rng(0)
    return rng.exponential(1.0, (7, g.n_voxels)), rng.uniform(1e3, 1e6, 7), g


def test_shapes_on_ds2(ds2_batch):
    showers, energies, g = ds2_batch
    widths = {"voxels": 6480, "voxels-normalized": 6481, "coarse": 648, "coarse-A": 648, "coarse-B": 540,
              "total-energy": 1, "layer-energies": 45, "shower-shape": 6, "calochallenge": 5 * 45}
    for name, width in widths.items():
        out = FEATURE_MAPS[name](showers, energies, g)
        assert out.shape == (7, width), name
        assert out.dtype == np.float64


def test_coarse_sums_and_totals_agree(ds2_batch):
    showers, energies, g = ds2_batch
    total = feature_map("total-energy")(showers, energies, g)[:, 0]
    for name in ("coarse-A", "coarse-B", "layer-energies"):
        assert np.allclose(feature_map(name)(showers, energies, g).sum(axis=1), total, rtol=1e-12)
    mapping = g.coarse_map(1, 2, 5)
    coarse = feature_map("coarse-A")(showers, energies, g)
    assert coarse[3, 17] == pytest.approx(showers[3, mapping == 17].sum())


def test_shape_features_match_compute_features(ds2_batch):
    showers, energies, g = ds2_batch
    f = compute_features(showers, energies, g)
    shape = feature_map("shower-shape")(showers, energies, g)
    assert np.allclose(shape[:, 0], f["centroid_alpha"]) and np.allclose(shape[:, 5], f["width_z"])


def test_voxels_normalized_divides_by_the_incident_energy(ds2_batch):
    showers, energies, g = ds2_batch
    out = feature_map("voxels-normalized")(showers, energies[:, None], g)  # (N, 1) as stored in the files
    assert np.allclose(out[:, :-1] * energies[:, None], showers, rtol=1e-12)
    assert np.allclose(10 ** out[:, -1], energies, rtol=1e-12)
    with pytest.raises(ValueError, match="must be > 0"):
        feature_map("voxels-normalized")(showers, np.zeros(7), g)


def test_unknown_and_wrong_geometry():
    with pytest.raises(KeyError, match="unknown feature map"):
        feature_map("voxel")
    g = get_geometry("ds1-photons")
    with pytest.raises(ValueError, match="dataset 2"):
        feature_map("coarse-B")(np.ones((1, g.n_voxels)), np.ones(1), g)
