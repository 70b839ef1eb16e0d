"""The built-in geometries equal the official CaloChallenge binning XMLs and have the spec's sizes."""

import numpy as np
import pytest

from caloray.errors import GeometryError
from caloray.geometry import BUILTIN, get_geometry, read_binning_xml

OFFICIAL = {
    "ds1-photons": ("binning_dataset_1_photons.xml", 368, 5),
    "ds1-pions": ("binning_dataset_1_pions.xml", 533, 7),
    "ds2": ("binning_dataset_2.xml", 6480, 45),
    "ds3": ("binning_dataset_3.xml", 40500, 45),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_builtin_equals_official_xml(name, shared_xml_dir):
    filename, n_voxels, n_layers = OFFICIAL[name]
    official = read_binning_xml(shared_xml_dir / filename)
    ours = get_geometry(name)
    assert ours.layers == official.layers  # ids, r edges and α bins (materials do not compare)
    assert ours.empty_layer_ids == official.empty_layer_ids
    assert (ours.pid, ours.particle) == (official.pid, official.particle)
    assert ours.n_voxels == official.n_voxels == n_voxels
    assert ours.n_layers == n_layers


def test_ecal_hcal_table():
    g = get_geometry("ecal-hcal")
    assert g.kind == "cartesian"
    assert [(lay.n_phi, lay.n_eta) for lay in g.layers] == [(3, 96), (12, 12), (12, 6), (3, 96), (12, 12), (12, 6)]
    assert g.n_voxels == 288 + 144 + 72 + 288 + 144 + 72
    # ECAL faces span 480 mm, HCAL faces 2000 mm, in both directions.
    for lay, face in zip(g.layers, [480, 480, 480, 2000, 2000, 2000], strict=True):
        assert lay.n_eta * lay.eta_cell_mm == pytest.approx(face)
        assert lay.n_phi * lay.phi_cell_mm == pytest.approx(face)
    assert [lay.material.sampling_fraction for lay in g.layers] == [0.2] * 3 + [0.013] * 3


def test_unknown_geometry_lists_valid_names():
    with pytest.raises(GeometryError, match=r"unknown geometry 'ds4'.*ds1-photons"):
        get_geometry("ds4")


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_index_maps_are_consistent(name):
    g = get_geometry(name)
    v = np.arange(g.n_voxels)
    assert np.array_equal(g.voxel_index(g.voxel_layer, g.voxel_cell), v)
    assert np.array_equal(np.bincount(g.voxel_layer), g.layer_sizes)
    for i in range(g.n_layers):
        assert np.all(g.voxel_layer[g.layer_slice(i)] == i)


def test_ds2_voxel_order_is_r_fastest_then_alpha_then_layer():
    g = get_geometry("ds2")
    layer, alpha, r = np.unravel_index(np.arange(g.n_voxels), (45, 16, 9))
    assert np.array_equal(g.voxel_layer, layer)
    assert np.array_equal(g.voxel_alpha_bin, alpha)
    assert np.array_equal(g.voxel_r_bin, r)
    r_mm, a_rad = g.voxel_centres
    assert r_mm[0] == pytest.approx(4.65 / 2) and r_mm[8] == pytest.approx(41.85 - 4.65 / 2)
    assert a_rad[9] - a_rad[0] == pytest.approx(2 * np.pi / 16)


def test_cell_lookup_inverts_centres():
    for name in ("ds1-pions", "ecal-hcal"):
        g = get_geometry(name)
        u, v = g.voxel_centres
        for i in range(g.n_layers):
            sl = g.layer_slice(i)
            assert np.array_equal(g.cell_of(i, u[sl], v[sl]), np.arange(sl.start, sl.stop))
    g = get_geometry("ds2")
    assert g.cell_of(0, np.array([41.86, -1.0]), np.array([0.0, 0.0])).tolist() == [-1, -1]
    assert g.cell_of(0, np.array([1.0]), np.array([np.pi])).tolist() == [0]  # α wraps to −π


def test_depths_accumulate():
    g = get_geometry("ds2")
    assert g.layer_depth_x0[-1] == pytest.approx(45 * 0.8)
    assert np.all(np.diff(g.layer_depth_lambda) > 0)
