"""Built-in simulator throughput (showers/s per worker), Ray 1→2 worker scaling, and peak memory while
streaming 1,000,000 ds1-photons showers to disk compared with 100,000 (bounded, independent of N).

Prints figures only (no assertions). `--quick` uses 5× smaller sizes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from caloray.runtime import init_ray
from caloray.sim import SimConfig, run_shards, simulate_batch

Row = tuple[str, float, str]
SHARD_SIZE = 20_000  # memory runs: N=100k → 5 shards, N=1M → 50 shards of ≈ 30 MB float32 each

#: (label, config) for the in-process per-worker throughput: dataset-like priors.
THROUGHPUT_CASES = (
    ("ds1-photons γ, ds1 ladder 256 MeV–4 TeV", SimConfig.preset("ds1-photons"), 5_000),
    ("ds2 e⁻, log-uniform 1 GeV–1 TeV", SimConfig.preset("ds2"), 1_000),
    ("ecal-hcal π⁺, uniform 1–100 GeV", SimConfig.preset("ecal-hcal"), 5_000),
)


def _proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def _throughput(config: SimConfig, n: int) -> float:
    """Showers per second of `simulate_batch` in this process (one worker, no I/O)."""
    simulate_batch(config, np.random.default_rng(123), min(n, 200))  # warm caches and imports
    t0 = time.perf_counter()
    simulate_batch(config, np.random.default_rng(0), n)
    return n / (time.perf_counter() - t0)


def _ray_run(config: SimConfig, out_dir: Path, workers: int) -> tuple[float, float, float]:
    """(wall, Σ task wall, Σ task CPU) seconds of a Ray run (simulate + gzip write), `workers` in flight."""
    t0 = time.perf_counter()
    results = run_shards(config, out_dir, progress=False, actors=workers)
    wall = time.perf_counter() - t0
    return wall, sum(r.seconds for r in results), sum(r.cpu_seconds for r in results)


def _clean(folder: Path) -> None:
    """Remove earlier shard files under `folder` (keeps the disk footprint of repeats small)."""
    for path in folder.glob("*/*.h5"):
        path.unlink()


def _memory_run(n_showers: int, out_dir: Path) -> tuple[float, float, float, int]:
    """Fresh 2-CPU Ray session; returns (max worker peak RSS MiB, driver RSS MiB after, seconds, shards)."""
    if ray.is_initialized():
        ray.shutdown()
    init_ray(num_cpus=2)
    config = SimConfig.preset("ds1-photons", n_showers=n_showers, shard_size=SHARD_SIZE, seed=1)
    t0 = time.perf_counter()
    results = run_shards(config, out_dir, progress=True)
    seconds = time.perf_counter() - t0
    return max(r.peak_rss_mib for r in results), _proc_status_mib("VmRSS"), seconds, len(results)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    scale = 5 if args.quick else 1
    rows: list[Row] = []

    for label, config, n in THROUGHPUT_CASES:
        rows.append((f"simulate {label}, 1 worker (no I/O)", _throughput(config, n // scale), "showers/s"))

    init_ray(num_cpus=2)
    with tempfile.TemporaryDirectory() as tmp:
        n_scaling = 200_000 // scale
        config = SimConfig.preset("ds1-photons", n_showers=n_scaling, shard_size=n_scaling // 20, seed=2)
        _ray_run(SimConfig.preset("ds1-photons", n_showers=400, shard_size=100), Path(tmp) / "warm", 2)
        # Interleaved repeats, best of each: other load on the machine hits both settings alike.
        load = os.getloadavg()[0]
        times: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
        for _ in range(2):
            for workers in (1, 2):
                _clean(Path(tmp))
                times[workers].append(_ray_run(config, Path(tmp) / f"w{workers}", workers))
        (t1, _, cpu1), (t2, busy2, cpu2) = min(times[1]), min(times[2])
        rows += [
            ("Ray simulate+write ds1-photons, 1 worker", n_scaling / t1, "showers/s"),
            ("Ray simulate+write ds1-photons, 2 workers", n_scaling / t2, "showers/s"),
            ("Ray 1 → 2 workers speed-up (goal ≥ 1.7)", t1 / t2, "×"),
            ("2 workers: shard tasks running concurrently (Σ task time / wall)", busy2 / t2, "tasks"),
            ("1 worker: CPU obtained (Σ task CPU / wall; 1 = a whole core)", cpu1 / t1, "cores"),
            ("2 workers: CPU obtained (Σ task CPU / wall; 2 = two whole cores)", cpu2 / t2, "cores"),
            # Load-independent estimate: both runs do the same work; on idle cores wall ≈ CPU per worker.
            ("estimated 1 → 2 speed-up on idle cores (2 × CPU₁ / CPU₂)", 2 * cpu1 / cpu2, "×"),
            (f"machine load average at start (CPUs: {os.cpu_count()})", load, "runnable"),
        ]

    small, large = 100_000 // scale, 1_000_000 // scale
    with tempfile.TemporaryDirectory() as tmp:
        peak_s, driver_s, sec_s, shards_s = _memory_run(small, Path(tmp) / "small")
    with tempfile.TemporaryDirectory() as tmp:
        peak_l, driver_l, sec_l, shards_l = _memory_run(large, Path(tmp) / "large")
    rows += [
        (f"ds1-photons N={small:,}: worker peak RSS ({shards_s} shards)", peak_s, "MiB"),
        (f"ds1-photons N={large:,}: worker peak RSS ({shards_l} shards)", peak_l, "MiB"),
        (f"ds1-photons N={large:,} / N={small:,} worker peak RSS", peak_l / peak_s, "ratio"),
        (f"ds1-photons N={small:,}: driver RSS after run", driver_s, "MiB"),
        (f"ds1-photons N={large:,}: driver RSS after run", driver_l, "MiB"),
        (f"ds1-photons N={small:,} to disk, 2 workers", small / sec_s, "showers/s"),
        (f"ds1-photons N={large:,} to disk, 2 workers", large / sec_l, "showers/s"),
    ]
    ray.shutdown()
    for name, value, unit in rows:
        print(f"{name:62s} {value:12.3f} {unit}")
    return rows


if __name__ == "__main__":
    main()
