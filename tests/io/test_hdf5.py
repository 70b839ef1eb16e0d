"""CaloChallenge HDF5 files: bit-exact round trips and a clear error for every kind of bad input."""

import h5py
import numpy as np
import pytest

from caloray.errors import ShowerFileError
from caloray.geometry import get_geometry
from caloray.io import inspect_shower_file, read_shower_file, read_shower_rows, write_showers


@pytest.fixture
def sample(tmp_path):
    rng = np.random.default_rng(3)
    showers = rng.exponential(1.0, (50, 368)).astype(np.float32)
    energies = rng.uniform(1e3, 1e5, 50)
    path = write_showers(tmp_path / "s.h5", showers, energies, geometry="ds1-photons", attrs={"seed": 3})
    return path, showers, energies


def test_round_trip_is_bit_exact(sample):
    path, showers, energies = sample
    data = read_shower_file(path, get_geometry("ds1-photons"))
    assert data["showers"].dtype == np.float32 and data["showers"].tobytes() == showers.tobytes()
    assert data["incident_energies"].tobytes() == energies.tobytes()
    with h5py.File(path) as f:
        assert f["incident_energies"].shape == (50, 1)
        assert f.attrs["geometry"] == "ds1-photons" and f.attrs["seed"] == 3


def test_row_ranges(sample):
    path, showers, _ = sample
    assert np.array_equal(read_shower_rows(path, 10, 20)["showers"], showers[10:20])


def test_float64_files_and_1d_energies_are_read(tmp_path):
    path = tmp_path / "f64.h5"
    with h5py.File(path, "w") as f:
        f["incident_energies"] = np.array([1.0, 2.0])
        f["showers"] = np.ones((2, 4))
        f["extra_label"] = np.array([0, 1])
    info = inspect_shower_file(path)
    assert info.showers_dtype == np.float64 and info.per_row_keys == ("extra_label",)
    assert read_shower_rows(path, extra_keys=("extra_label",))["extra_label"].tolist() == [0, 1]


def _write(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return path


@pytest.mark.parametrize(
    ("datasets", "message"),
    [
        ({"showers": np.ones((2, 368))}, "missing dataset 'incident_energies'"),
        ({"incident_energies": np.ones((2, 1))}, "missing dataset 'showers'"),
        ({"incident_energies": np.ones((2, 1)), "showers": np.ones((2, 8, 46))}, "rank 3"),
        ({"incident_energies": np.ones((2, 2)), "showers": np.ones((2, 368))}, "expected \\(N, 1\\)"),
        ({"incident_energies": np.ones((3, 1)), "showers": np.ones((2, 368))}, "3 rows but 'showers' has 2"),
        ({"incident_energies": np.ones((2, 1)), "showers": np.ones((2, 367))}, "367 voxels per shower.*368"),
        ({"incident_energies": np.ones((0, 1)), "showers": np.ones((0, 368))}, "zero-length"),
        ({"incident_energies": np.ones((2, 1)), "showers": np.ones((2, 368), dtype=np.int32)}, "floating point"),
    ],
)
def test_structural_errors_name_file_and_key(tmp_path, datasets, message):
    path = _write(tmp_path / "bad.h5", **datasets)
    with pytest.raises(ShowerFileError, match=message) as info:
        inspect_shower_file(path, get_geometry("ds1-photons"))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("key", "bad", "message"),
    [("showers", np.nan, "'showers' row 1 holds a non-finite"), ("showers", np.inf, "non-finite"),
     ("showers", -1.0, "'showers' row 1 holds a negative"),
     ("incident_energies", np.nan, "'incident_energies' row 1 holds a non-finite"),
     ("incident_energies", -5.0, "'incident_energies' row 1 holds a negative")],
)
def test_bad_values_name_file_key_and_row(tmp_path, key, bad, message):
    data = {"incident_energies": np.ones((3, 1)), "showers": np.ones((3, 368))}
    data[key][1, 0] = bad
    path = _write(tmp_path / "values.h5", **data)
    with pytest.raises(ShowerFileError, match=message) as info:
        read_shower_rows(path)
    assert str(path) in str(info.value)


def test_zero_byte_truncated_and_corrupt_files(tmp_path, sample):
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(ShowerFileError, match="empty"):
        inspect_shower_file(empty)
    path, _, _ = sample
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ShowerFileError, match="truncated or corrupt") as info:
        read_shower_file(truncated)
    assert str(truncated) in str(info.value)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(ShowerFileError, match="truncated or corrupt"):
        inspect_shower_file(garbage)
    with pytest.raises(ShowerFileError, match="not found"):
        inspect_shower_file(tmp_path / "nope.h5")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ShowerFileError):
        write_showers(tmp_path / "x.h5", np.ones((3, 4)), np.ones(2))
    assert list(tmp_path.iterdir()) == []

    class Boom(dict):
        def items(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_showers(tmp_path / "y.h5", np.ones((3, 4)), np.ones(3), attrs=Boom(a=1))
    assert list(tmp_path.iterdir()) == []
