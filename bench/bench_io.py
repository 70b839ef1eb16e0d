"""Ray Data HDF5 read throughput vs a plain sequential h5py read of the same file, and 1→2 worker scaling;
caloray's reader on the same showers as an HDF5 path, an fsspec file:// URL and a ROOT file (uproot)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import ray

from caloray.io import read_shower_rows, read_showers, write_showers
from caloray.runtime import init_ray

Row = tuple[str, float, str]


def _make_file(path: Path, n_rows: int, n_voxels: int) -> Path:
    rng = np.random.default_rng(0)
    # Sparse, exponential voxel energies compress like real showers (many zeros).
    block = 2000
    showers = np.zeros((n_rows, n_voxels), np.float32)
    for lo in range(0, n_rows, block):
        chunk = rng.exponential(1.0, (min(block, n_rows - lo), n_voxels)).astype(np.float32)
        chunk[rng.random(chunk.shape) < 0.6] = 0.0
        showers[lo:lo + len(chunk)] = chunk
    return write_showers(path, showers, rng.uniform(1e3, 1e6, n_rows), geometry="ds2")


def _root_copy(h5: Path, path: Path, rows_per_write: int = 2000) -> Path:
    """The same showers as a ROOT TTree (default layout, uproot's default zlib compression)."""
    import uproot

    with h5py.File(h5, "r") as f, uproot.recreate(path) as out:
        showers, energies = f["showers"], f["incident_energies"]
        out.mktree("showers", {"incident_energies": energies.dtype,
                               "showers": np.dtype((showers.dtype, showers.shape[1:]))})
        for lo in range(0, showers.shape[0], rows_per_write):
            out["showers"].extend({"incident_energies": energies[lo:lo + rows_per_write].reshape(-1),
                                   "showers": showers[lo:lo + rows_per_write]})
    return path


def _caloray_sequential(location: Path | str, n_rows: int, rows_per_read: int) -> float:
    """caloray's validated reader (the one each Ray read task calls), block by block in one process."""
    t0 = time.perf_counter()
    total = 0.0
    for lo in range(0, n_rows, rows_per_read):
        batch = read_shower_rows(location, lo, lo + rows_per_read)
        total += float(batch["showers"].sum()) + float(batch["incident_energies"].sum())
    return time.perf_counter() - t0


def _h5py_sequential(path: Path, rows_per_read: int) -> float:
    t0 = time.perf_counter()
    total = 0.0
    with h5py.File(path, "r") as f:
        n = f["showers"].shape[0]
        for lo in range(0, n, rows_per_read):
            total += float(f["showers"][lo:lo + rows_per_read].sum())
            total += float(f["incident_energies"][lo:lo + rows_per_read].sum())
    return time.perf_counter() - t0


def _ray_read(path: Path, cpus: int, rows_per_block: int, n_blocks: int) -> float:
    t0 = time.perf_counter()
    # The reduction runs fused with the read inside the read tasks, as any real map_batches stage would.
    ds = read_showers(path, rows_per_block=rows_per_block, override_num_blocks=n_blocks, concurrency=cpus)
    sums = ds.map_batches(_block_sum, batch_size=None, batch_format="numpy", zero_copy_batch=True)
    sum(float(s) for s in sums.to_pandas()["sum"])
    return time.perf_counter() - t0


def _block_sum(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"sum": np.array([batch["showers"].sum() + batch["incident_energies"].sum()])}


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n_rows = 4_000 if args.quick else 20_000
    init_ray(num_cpus=2)
    ray.data.DataContext.get_current().enable_progress_bars = False
    with tempfile.TemporaryDirectory() as tmp:
        path = _make_file(Path(tmp) / "bench.h5", n_rows, 6480)
        mb = n_rows * 6480 * 4 / 1e6
        _h5py_sequential(path, 1000)  # warm the page cache for both readers
        t_h5 = min(_h5py_sequential(path, 1000) for _ in range(2))
        _ray_read(path, 1, 1000, 4)  # warm-up: worker start-up is not read throughput
        t_1 = min(_ray_read(path, 1, 1000, 8) for _ in range(2))
        t_2 = min(_ray_read(path, 2, 1000, 8) for _ in range(2))
        root = _root_copy(path, Path(tmp) / "bench.root")
        sources = {"HDF5 path": path, "HDF5 file:// URL (fsspec)": f"file://{path}", "ROOT (uproot)": root}
        for location in sources.values():  # warm the page cache for every reader
            _caloray_sequential(location, n_rows, 1000)
        t_read = {k: min(_caloray_sequential(v, n_rows, 1000) for _ in range(2)) for k, v in sources.items()}
    rows: list[Row] = [
        ("h5py sequential read (ds2, gzip)", mb / t_h5, "MB/s"),
        ("Ray Data read, 1 worker", mb / t_1, "MB/s"),
        ("Ray Data read, 2 workers", mb / t_2, "MB/s"),
        ("Ray 1 worker / h5py sequential (goal ≥ 0.7)", t_h5 / t_1, "ratio"),
        ("Ray 1 → 2 workers speed-up (goal ≥ 1.6)", t_1 / t_2, "×"),
        *((f"caloray reader, {k}", mb / t, "MB/s") for k, t in t_read.items()),
        ("file:// URL / local path read time", t_read["HDF5 file:// URL (fsspec)"] / t_read["HDF5 path"], "ratio"),
        ("ROOT / HDF5 read time (same showers)", t_read["ROOT (uproot)"] / t_read["HDF5 path"], "ratio"),
    ]
    for name, value, unit in rows:
        print(f"{name:55s} {value:10.3f} {unit}")
    return rows


if __name__ == "__main__":
    main()
