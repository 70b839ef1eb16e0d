"""Write simulated showers to CaloChallenge HDF5 shards on the shared shard runner (`caloray.pipelines.shards`).

Each unit simulates one shard (deterministic in (seed, shard index)) and writes it atomically; actors send
back only a small record (file, sha256, peak RSS, seconds), never the arrays, so driver memory does not grow
with the number of showers and a worker holds one shard at a time (shard_size × n_voxels × 4 bytes plus a
bounded chunk). Resume, folder lock and the refusal of another configuration come from the runner.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from caloray.sim.config import SimConfig
from caloray.sim.shower import simulate_shard

if TYPE_CHECKING:
    from caloray.pipelines.shards import Unit

GENERATOR = "caloray.sim"


@dataclass(frozen=True)
class ShardResult:
    """One shard of a run: its file, the worker's peak RSS (MiB) so far, wall and CPU time (s); 0 when reused."""

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


def write_shard(config: SimConfig, shard_index: int, out_dir: str | Path, prefix: str = "showers") -> Path:
    """Simulate shard `shard_index` and write it to `shard_path(out_dir, shard_index, prefix)` (no Ray)."""
    from caloray.io import write_showers

    energies_mev, showers_mev = simulate_shard(config, shard_index)
    return write_showers(shard_path(out_dir, shard_index, prefix), showers_mev, energies_mev,
                         geometry=config.geometry, attrs=shard_attrs(config, shard_index))


class _ShardSimulator:
    """Shard-runner worker: simulates unit i = shard i; records peak RSS and CPU time per shard."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config

    def setup(self, device: str) -> None:
        pass  # nothing to load: the simulator is pure numpy

    def compute(self, unit: Unit) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        self.began_cpu = time.process_time()
        energies_mev, showers_mev = simulate_shard(self.config, unit.key["shard"])
        return energies_mev, showers_mev, shard_attrs(self.config, unit.key["shard"])

    def write(self, path: Path, result: tuple[np.ndarray, np.ndarray, dict[str, Any]]) -> None:
        from caloray.io import write_showers

        energies_mev, showers_mev, attrs = result
        write_showers(path, showers_mev, energies_mev, geometry=self.config.geometry, attrs=attrs)

    def stats(self) -> dict[str, float]:
        return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # Linux: KiB
                "cpu_seconds": time.process_time() - self.began_cpu}


def run_shards(config: SimConfig, out_dir: str | Path, *, progress: bool = True, actors: int | None = None,
               prefix: str = "showers") -> list[ShardResult]:
    """Run (or resume) every shard of `config` on the shard runner (`actors`, default one per cluster CPU).

    Results are in shard order; shards reused from an earlier run of the same config have seconds 0.
    """
    from caloray.pipelines.shards import Unit, run_units

    ranges = [config.shard_range(i) for i in range(config.n_shards)]
    units = [Unit(i, shard_path(out_dir, i, prefix).name, hi - lo, {"shard": i, "start": lo, "stop": hi})
             for i, (lo, hi) in enumerate(ranges)]
    identity = {"workflow": "simulate", "config": json.loads(config.to_json())}
    records = run_units(out_dir, identity, units, _ShardSimulator(config), actors=actors, use_gpu=False,
                        progress=progress)
    return [ShardResult(r.index, shard_path(out_dir, r.index, prefix), r.stats.get("peak_rss_mib", 0.0),
                        r.seconds, r.stats.get("cpu_seconds", 0.0)) for r in records]


def simulate_to_files(config: SimConfig, out_dir: str | Path, *, progress: bool = True, actors: int | None = None,
                      prefix: str = "showers") -> list[Path]:
    """Simulate `config.n_showers` showers into `config.n_shards` HDF5 files in `out_dir` with Ray.

    Returns the shard paths in shard order (`{prefix}-00000.h5`, …). See `run_shards` for the options.
    """
    return [r.path for r in run_shards(config, out_dir, progress=progress, actors=actors, prefix=prefix)]
