"""fsspec URLs (memory://, file://; s3:// goes the same way with s3fs installed): same readers, same errors."""

import fsspec
import numpy as np
import pytest

from caloray.errors import ShowerFileError
from caloray.io import expand_paths, inspect_shower_file, read_shower_rows, read_showers, write_showers


@pytest.fixture()
def memory_files(tmp_path, write_root):
    """Two HDF5 files and one ROOT file copied into fsspec's in-memory filesystem."""
    rng = np.random.default_rng(5)
    showers = rng.exponential(1.0, (90, 368)).astype(np.float32)
    energies = rng.uniform(1e3, 1e5, 90)
    fs = fsspec.filesystem("memory")
    local = [write_showers(tmp_path / "a.h5", showers[:50], energies[:50]),
             write_showers(tmp_path / "b.h5", showers[50:], energies[50:]),
             write_root(tmp_path / "c.root", showers, energies)]
    for path in local:
        fs.pipe(f"/calo/{path.name}", path.read_bytes())
    fs.pipe("/calo/notes.txt", b"not a shower file")
    fs.pipe("/calo/empty.h5", b"")
    yield showers, energies
    fs.rm("/calo", recursive=True)


def test_memory_urls_read_like_local_files(memory_files):
    showers, energies = memory_files
    found = expand_paths("memory://calo/")
    assert [str(p).rsplit("/", 1)[-1] for p in found] == ["a.h5", "b.h5", "c.root", "empty.h5"]
    assert expand_paths("memory://calo/*.root") == ["memory:///calo/c.root"]
    info = inspect_shower_file("memory://calo/b.h5")
    assert (info.n_showers, info.n_voxels, info.path) == (40, 368, "memory://calo/b.h5")
    rows = read_shower_rows("memory://calo/b.h5", 5, 25)
    np.testing.assert_array_equal(rows["showers"], showers[55:75])
    root = read_shower_rows("memory://calo/c.root", 60, 90)
    np.testing.assert_array_equal(root["showers"], showers[60:90])
    np.testing.assert_array_equal(root["incident_energies"], energies[60:90])


def test_url_errors_name_the_url(memory_files):
    with pytest.raises(ShowerFileError, match=r"memory://calo/empty\.h5: file is empty"):
        inspect_shower_file("memory://calo/empty.h5")
    with pytest.raises(ShowerFileError, match=r"memory://calo/none\.h5: file not found"):
        inspect_shower_file("memory://calo/none.h5")
    with pytest.raises(ShowerFileError, match=r"memory://calo/nothing\*\.h5: pattern matches no file"):
        expand_paths("memory://calo/nothing*.h5")
    with pytest.raises(ShowerFileError, match=r"nosuchproto://x/y\.h5: cannot open this URL"):
        expand_paths("nosuchproto://x/y.h5")


def test_ray_reader_over_file_urls(ray_local, tmp_path, write_root):
    """Ray tasks run in other processes, so the Ray test uses file:// (memory:// lives in one process)."""
    rng = np.random.default_rng(9)
    showers = rng.exponential(1.0, (300, 368)).astype(np.float32)
    energies = rng.uniform(1e3, 1e5, 300)
    write_showers(tmp_path / "a.h5", showers[:200], energies[:200])
    write_root(tmp_path / "b.root", showers[200:], energies[200:])
    ds = read_showers(f"file://{tmp_path}/", rows_per_block=64, provenance=True)
    rows = sorted(ds.take_all(), key=lambda r: (r["source_file"], r["source_row"]))
    assert {r["source_file"] for r in rows} == {f"file://{tmp_path}/a.h5", f"file://{tmp_path}/b.root"}
    np.testing.assert_array_equal(np.stack([r["showers"] for r in rows]), showers)
    np.testing.assert_allclose([r["incident_energies"] for r in rows], energies)
