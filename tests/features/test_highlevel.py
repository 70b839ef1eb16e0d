"""High-level features against hand-computed cases and a slow per-voxel loop."""

import numpy as np
import pytest

from caloray.features import compute_features, hit_counts, layer_energies, weighted_moments
from caloray.geometry import get_geometry


def test_layer_energies_match_a_loop():
    g = get_geometry("ds1-pions")
    showers = np.random.default_rng(0).exponential(1.0, (5, g.n_voxels))
    expected = np.zeros((5, g.n_layers))
    for v in range(g.n_voxels):
        expected[:, g.voxel_layer[v]] += showers[:, v]
    assert np.allclose(layer_energies(showers, g), expected, rtol=1e-12)


def test_single_voxel_and_two_voxel_moments():
    g = get_geometry("ds2")
    shower = np.zeros((2, g.n_voxels))
    v = g.voxel_index(7, 3 * 9 + 4)  # layer 7, α bin 3, r bin 4
    shower[0, v] = 10.0
    a, b = g.voxel_index(2, 0), g.voxel_index(6, 0)  # same (r, α) in layers 2 and 6
    shower[1, [a, b]] = 5.0
    f = compute_features(shower, np.array([100.0, 10.0]), g)
    r_mm, alpha = g.voxel_centres
    assert f["centroid_r"][0] == pytest.approx(r_mm[v]) and f["width_r"][0] == pytest.approx(0.0, abs=1e-9)
    assert f["centroid_alpha"][0] == pytest.approx(alpha[v])
    assert f["centroid_z"].tolist() == pytest.approx([7.0, 4.0])
    assert f["width_z"][1] == pytest.approx(2.0)
    assert f["response"].tolist() == pytest.approx([0.1, 1.0])
    assert f["layer_energies_mev"].shape == (2, 45)
    assert f["n_hits"].tolist() == [1, 2]
    # per-layer η/φ centroid: x = r cos α of the voxel centre
    assert f["layer_centroid_eta"][0, 7] == pytest.approx(r_mm[v] * np.cos(alpha[v]))
    assert f["layer_centroid_phi"][0, 7] == pytest.approx(r_mm[v] * np.sin(alpha[v]))
    assert f["layer_width_eta"][0, 7] == pytest.approx(0.0, abs=1e-9)


def test_moments_match_direct_formula():
    rng = np.random.default_rng(1)
    showers = rng.exponential(1.0, (4, 30))
    position = rng.normal(size=30)
    mean, width = weighted_moments(showers, position)
    for i in range(4):
        w = showers[i]
        m = np.sum(w * position) / w.sum()
        assert mean[i] == pytest.approx(m)
        assert width[i] == pytest.approx(np.sqrt(np.sum(w * (position - m) ** 2) / w.sum()))


def test_empty_shower_gives_zero_moments_not_nan():
    g = get_geometry("ecal-hcal")
    f = compute_features(np.zeros((1, g.n_voxels)), np.array([1000.0]), g)
    assert all(np.all(np.isfinite(v)) for v in f.values())
    assert f["centroid_eta"][0] == 0.0


def test_hits_use_threshold():
    assert hit_counts(np.array([[0.0, 0.01, 0.02, 1.0]]), 0.01515).tolist() == [2]
    g = get_geometry("ds2")
    shower = np.zeros((1, g.n_voxels))
    shower[0, :3] = [0.01, 0.02, 0.0]
    assert compute_features(shower, np.array([1.0]), g)["n_hits"].tolist() == [1]
