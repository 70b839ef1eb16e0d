"""Write simulated showers to CaloChallenge HDF5 shards, one Ray task per shard.

Each task simulates its shard (deterministic in (seed, shard index)), writes it atomically with
`caloray.io.write_showers` and returns only a small `ShardResult` (path, peak RSS, seconds), never the
arrays; at most `max_in_flight` tasks are pending, so driver memory does not grow with the number of
showers and a worker holds one shard at a time (shard_size × n_voxels × 4 bytes plus a bounded chunk).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caloray.sim.config import SimConfig
from caloray.sim.shower import simulate_shard

GENERATOR = "caloray.sim"


@dataclass(frozen=True)
class ShardResult:
    """What a shard task sends back: its file, the worker's peak RSS (MiB) so far, wall and CPU time (s)."""

    shard_index: int
    path: Path
    peak_rss_mib: float
    seconds: float
    cpu_seconds: float = 0.0


def shard_path(out_dir: str | Path, shard_index: int, prefix: str = "showers") -> Path:
    """`out_dir/{prefix}-{shard_index:05d}.h5`."""
    return Path(out_dir) / f"{prefix}-{shard_index:05d}.h5"


def shard_attrs(config: SimConfig, shard_index: int) -> dict[str, Any]:
    """File attributes of one shard: generator, particle, seed, shard index, and the whole config as JSON."""
    start, _ = config.shard_range(shard_index)
    return {
        "generator": GENERATOR,
        "sim_config": config.to_json(),
        "particle": config.resolved_particle,
        "prior": config.prior,
        "seed": config.seed,
        "shard_index": shard_index,
        "n_shards": config.n_shards,
        "first_shower_index": start,
        "shard_size": config.resolved_shard_size,
        "readout_threshold_mev": config.resolved_threshold_mev,
        "note": "parametrized showers from caloray's built-in simulator, not Geant4",
    }


def write_shard(
    config: SimConfig,
    shard_index: int,
    out_dir: str | Path,
    prefix: str = "showers",
) -> ShardResult:
    """Simulate shard `shard_index` and write it to `shard_path(out_dir, shard_index, prefix)`."""
    from caloray.io import write_showers

    began, began_cpu = time.perf_counter(), time.process_time()
    energies_mev, showers_mev = simulate_shard(config, shard_index)
    path = write_showers(
        shard_path(out_dir, shard_index, prefix),
        showers_mev,
        energies_mev,
        geometry=config.geometry,
        attrs=shard_attrs(config, shard_index),
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
    return ShardResult(shard_index, Path(path), peak_mib, seconds, cpu_seconds)


def run_shards(
    config: SimConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    max_in_flight: int | None = None,
    prefix: str = "showers",
    skip_existing: bool = False,
) -> list[ShardResult]:
    """Run every shard of `config` as a Ray task (≤ `max_in_flight` pending, default 2 × cluster CPUs).

    Results are sorted by shard index. `skip_existing` keeps shard files already present (resume after
    an interruption; writes are atomic, so an existing file is complete).
    """
    import ray
    from tqdm.auto import tqdm

    from caloray.runtime import init_ray

    if not ray.is_initialized():
        init_ray()
    out_dir = Path(out_dir).resolve()  # workers write here: a shared filesystem on multi-node clusters
    out_dir.mkdir(parents=True, exist_ok=True)
    if max_in_flight is None:
        max_in_flight = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1)(write_shard)
    exists = [skip_existing and shard_path(out_dir, i, prefix).exists() for i in range(config.n_shards)]
    done_before = {i for i, present in enumerate(exists) if present}
    todo = [i for i in range(config.n_shards) if i not in done_before]
    results = [ShardResult(i, shard_path(out_dir, i, prefix), 0.0, 0.0) for i in sorted(done_before)]
    config_ref = ray.put(config)
    pending: list[Any] = []
    with tqdm(
        total=config.n_shards,
        initial=len(results),
        disable=not progress,
        unit="shard",
        desc=f"simulate {config.geometry}",
    ) as bar:
        for shard_index in todo:
            if len(pending) >= max_in_flight:
                done, pending = ray.wait(pending, num_returns=1)
                results.extend(ray.get(done))
                bar.update(len(done))
            pending.append(task.remote(config_ref, shard_index, str(out_dir), prefix))
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            results.extend(ray.get(done))
            bar.update(len(done))
    return sorted(results, key=lambda r: r.shard_index)


def simulate_to_files(
    config: SimConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    max_in_flight: int | None = None,
    prefix: str = "showers",
    skip_existing: bool = False,
) -> list[Path]:
    """Simulate `config.n_showers` showers into `config.n_shards` HDF5 files in `out_dir` with Ray.

    Returns the shard paths in shard order (`{prefix}-00000.h5`, …). See `run_shards` for the options.
    """
    results = run_shards(
        config,
        out_dir,
        progress=progress,
        max_in_flight=max_in_flight,
        prefix=prefix,
        skip_existing=skip_existing,
    )
    return [r.path for r in results]
