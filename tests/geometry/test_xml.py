"""Binning XML: round trip through our writer, and clear errors for inconsistent files."""

import dataclasses

import pytest

from caloray.errors import GeometryError
from caloray.geometry import get_geometry, read_binning_xml, write_binning_xml


@pytest.mark.parametrize("name", ["ds1-photons", "ds1-pions", "ds2", "ds3"])
def test_write_then_read_is_identity(tmp_path, name):
    g = get_geometry(name)
    path = tmp_path / f"{name}.xml"
    write_binning_xml(g, path)
    back = read_binning_xml(path, name=name)
    assert back.layers == g.layers and back.empty_layer_ids == g.empty_layer_ids
    assert back.n_voxels == g.n_voxels


def test_official_file_round_trips(tmp_path, shared_xml_dir):
    official = read_binning_xml(shared_xml_dir / "binning_dataset_1_pions.xml")
    write_binning_xml(official, tmp_path / "copy.xml")
    assert read_binning_xml(tmp_path / "copy.xml") == dataclasses.replace(official, name="copy")


def _xml(tmp_path, layers: str):
    path = tmp_path / "bad.xml"
    path.write_text(f'<Bins><Bin pid="11" name="electron">{layers}</Bin></Bins>')
    return path


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ('<Layer id="0" r_edges="0,5,3" n_bin_alpha="1"/>', "strictly increase"),
        ('<Layer id="0" r_edges="1,5" n_bin_alpha="1"/>', "start at 0"),
        ('<Layer id="0" r_edges="0,5" n_bin_alpha="1"/><Layer id="0" r_edges="0,5" n_bin_alpha="1"/>', "twice"),
        ('<Layer id="1" r_edges="0,5" n_bin_alpha="1"/><Layer id="0" r_edges="0,5" n_bin_alpha="1"/>', "increase"),
        ('<Layer id="0" r_edges="0,5" n_bin_alpha="0"/>', "n_bin_alpha"),
        ('<Layer id="0" r_edges="0,x" n_bin_alpha="1"/>', "numbers"),
        ('<Layer id="0" r_edges="0" n_bin_alpha="1"/>', "no layer with voxels"),
    ],
)
def test_inconsistent_layers_are_errors(tmp_path, layers, message):
    path = _xml(tmp_path, layers)
    with pytest.raises(GeometryError, match=message) as info:
        read_binning_xml(path)
    assert str(path) in str(info.value)


def test_malformed_xml(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<Bins><Bin>")
    with pytest.raises(GeometryError, match="not well-formed"):
        read_binning_xml(path)
    with pytest.raises(GeometryError, match="not found"):
        read_binning_xml(tmp_path / "missing.xml")
