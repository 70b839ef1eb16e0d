"""bench.binn_coverage: the radial-profile pooling keeps the layer energies; the coverage table on exact and
biased toy models."""

from __future__ import annotations

import numpy as np

from bench.binn_coverage import coverage_table, pool_voxels, radial_profile_map
from caloray.features.highlevel import layer_energies
from caloray.geometry import get_geometry


def test_radial_profile_sums_each_layers_angular_bins():
    geometry = get_geometry("ds1-photons")
    pooled, pooled_layer = radial_profile_map(geometry)
    n_r = [layer.n_r for layer in geometry.layers]
    assert len(pooled_layer) == sum(n_r) == 53
    np.testing.assert_array_equal(np.bincount(pooled_layer), n_r)
    np.testing.assert_array_equal(pooled_layer[pooled], geometry.voxel_layer)  # a voxel stays in its layer
    showers = np.random.default_rng(0).exponential(size=(7, geometry.n_voxels)).astype(np.float32)
    radial = pool_voxels(showers, pooled)
    by_layer = np.stack([radial[:, pooled_layer == layer].sum(1) for layer in range(geometry.n_layers)], 1)
    np.testing.assert_allclose(by_layer, layer_energies(showers, geometry), rtol=1e-5)
    # the same radial bin of two angular bins lands in one pooled voxel
    same = (geometry.voxel_layer == 1) & (geometry.voxel_r_bin == 3)
    assert same.sum() == geometry.layers[1].n_alpha and len(set(pooled[same])) == 1


def test_coverage_table_on_an_exact_and_a_biased_model():
    rng = np.random.default_rng(1)
    n = 10_000
    reference = np.column_stack([rng.normal(size=n), rng.exponential(size=n)])
    exact = [np.column_stack([rng.normal(size=n), rng.exponential(size=n)]) for _ in range(10)]
    # 20 % of the showers moved far outside the edges: the per-shower normalization sees it in every bin
    leaky = [np.where(rng.random((n, 1)) < 0.2, 50.0, values) for values in exact]
    for entry in coverage_table(reference, exact):
        assert entry["bins"] == 20 and entry["combined"] >= 0.68 and entry["band"] <= entry["combined"]
    for entry in coverage_table(reference, leaky):
        assert entry["combined"] < 0.4
