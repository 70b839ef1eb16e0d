"""ROOT input (uproot): the TTree ↔ CaloChallenge mapping, same numbers as HDF5, same one-line errors."""

import numpy as np
import pytest

from caloray.errors import ShowerFileError
from caloray.geometry import get_geometry
from caloray.io import RootLayout, inspect_shower_file, read_shower_file, read_shower_rows, write_showers

uproot = pytest.importorskip("uproot")

N, V = 120, 368


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(11)
    showers = rng.exponential(2.0, (N, V)).astype(np.float32) * (rng.random((N, V)) < 0.3)
    energies = rng.uniform(1e3, 1e5, N)
    return showers, energies


def test_root_reads_the_same_numbers_as_hdf5(tmp_path, sample, write_root):
    showers, energies = sample
    h5 = write_showers(tmp_path / "s.h5", showers, energies, geometry="ds1-photons")
    root = write_root(tmp_path / "s.root", showers, energies, geometry="ds1-photons",
                      extra={"event": np.arange(N, dtype=np.int64)})
    geometry = get_geometry("ds1-photons")
    info_root, info_h5 = inspect_shower_file(root, geometry), inspect_shower_file(h5, geometry)
    assert (info_root.n_showers, info_root.n_voxels, info_root.geometry) == (N, V, "ds1-photons")
    assert (info_root.n_showers, info_root.n_voxels) == (info_h5.n_showers, info_h5.n_voxels)
    assert info_root.showers_dtype == np.float32 and info_root.per_row_keys == ("event",)
    a, b = read_shower_file(root, geometry), read_shower_file(h5, geometry)
    np.testing.assert_array_equal(a["showers"], b["showers"])
    np.testing.assert_array_equal(a["incident_energies"], b["incident_energies"])
    rows = read_shower_rows(root, 17, 40, extra_keys=("event",))
    np.testing.assert_array_equal(rows["showers"], showers[17:40])
    np.testing.assert_array_equal(rows["event"], np.arange(17, 40))
    assert rows["showers"].dtype.isnative


def test_branch_names_are_configurable(tmp_path, sample, write_root):
    showers, energies = sample
    path = write_root(tmp_path / "c.root", showers, energies, tree="calo", energy_branch="e_inc",
                      shower_branch="voxels")
    layout = RootLayout.parse("calo:e_inc:voxels")
    assert layout == RootLayout("calo", "e_inc", "voxels")
    np.testing.assert_array_equal(read_shower_rows(path, layout=layout)["incident_energies"], energies)
    with pytest.raises(ShowerFileError, match=r"c\.root: TTree 'calo': missing branch 'showers' \(found: \['e_inc', "):
        inspect_shower_file(path)


@pytest.mark.parametrize("make, message", [
    (lambda w, p, s, e: w(p, s, e, tree="a") and _add_tree(p), r"several TTrees \['a', 'b'\]"),
    (lambda w, p, s, e: w(p, s, e, shower_branch="cells"), r"TTree 'showers': missing branch 'showers'"),
    (lambda w, p, s, e: w(p, s.astype(np.int32), e), r"TTree 'showers', branch 'showers': dtype int32, expected float"),
    (lambda w, p, s, e: w(p, s, np.stack([e, e], 1)), r"branch 'incident_energies': holds \(2,\) per entry"),
    (lambda w, p, s, e: w(p, s[:0], e[:0]), r"holds no showers \(zero entries\)"),
    (lambda w, p, s, e: w(p, s[:, :10], e) and inspect_shower_file(p, get_geometry("ds1-photons")),
     r"'showers' has 10 voxels per shower, geometry 'ds1-photons' has 368"),
])
def test_structural_errors_name_file_tree_and_branch(tmp_path, sample, write_root, make, message):
    path = tmp_path / "bad.root"
    with pytest.raises(ShowerFileError, match=message) as err:
        make(write_root, path, *sample)
        inspect_shower_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def _add_tree(path):
    with uproot.update(path) as f:
        f.mktree("b", {"x": np.float64})
    return path


def test_jagged_showers_are_refused(tmp_path):
    ak = pytest.importorskip("awkward")
    path = tmp_path / "jagged.root"
    with uproot.recreate(path) as f:
        f.mktree("showers", {"showers": "var * float32", "incident_energies": np.float64})
        f["showers"].extend({"showers": ak.Array([[1.0, 2.0], [3.0]]), "incident_energies": np.array([1.0, 2.0])})
    message = r"jagged\.root: TTree 'showers', branch 'showers': type 'float\[\]' is not a fixed-size"
    with pytest.raises(ShowerFileError, match=message):
        inspect_shower_file(path)


def test_bad_values_and_damaged_files(tmp_path, sample, write_root):
    showers, energies = sample
    bad = energies.copy()
    bad[7] = np.nan
    path = write_root(tmp_path / "nan.root", showers, bad)
    with pytest.raises(ShowerFileError, match=r"nan\.root: 'showers/incident_energies' row 7 holds a non-finite"):
        read_shower_rows(path)
    (tmp_path / "empty.root").write_bytes(b"")
    with pytest.raises(ShowerFileError, match=r"empty\.root: file is empty"):
        inspect_shower_file(tmp_path / "empty.root")
    good = write_root(tmp_path / "good.root", showers, energies).read_bytes()
    (tmp_path / "cut.root").write_bytes(good[: len(good) // 2])
    with pytest.raises(ShowerFileError, match=r"cut\.root: .*(truncated or corrupt)"):
        read_shower_rows(tmp_path / "cut.root")
    with pytest.raises(ShowerFileError, match=r"missing\.root: file not found"):
        inspect_shower_file(tmp_path / "missing.root")
    with pytest.raises(ShowerFileError, match="expected TREE"):
        RootLayout.parse("a:b:c:d")
