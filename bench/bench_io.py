"""Ray Data HDF5 read throughput vs a plain sequential h5py read of the same file, and 1→2 worker scaling."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import ray

from caloray.io import read_showers, write_showers
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
    rows: list[Row] = [
        ("h5py sequential read (ds2, gzip)", mb / t_h5, "MB/s"),
        ("Ray Data read, 1 worker", mb / t_1, "MB/s"),
        ("Ray Data read, 2 workers", mb / t_2, "MB/s"),
        ("Ray 1 worker / h5py sequential (goal ≥ 0.7)", t_h5 / t_1, "ratio"),
        ("Ray 1 → 2 workers speed-up (goal ≥ 1.6)", t_1 / t_2, "×"),
    ]
    for name, value, unit in rows:
        print(f"{name:55s} {value:10.3f} {unit}")
    return rows


if __name__ == "__main__":
    main()
