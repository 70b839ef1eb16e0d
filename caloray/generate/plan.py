"""Shard planning and seeding: which rows each shard holds and the random streams it draws from.

Shard i holds global showers [i·shard_size, min(n, (i+1)·shard_size)). Its random streams come from
`numpy.random.SeedSequence(seed, spawn_key=(0, i))` split into two children: one numpy generator for the
incident energies, one 63-bit torch seed for the model's sampling. A shard's contents therefore depend only on
(seed, i, the energy spec, the model, the batch size and the device type), never on which worker or which run
produced it. The automatic validation draws from `SeedSequence(seed, spawn_key=(1,))`, disjoint from all shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from caloray.errors import ConfigError
from caloray.generate.energies import EnergySpec

SHARD_PREFIX = "shard"
_SHARD_STREAMS = 0
_VALIDATION_STREAMS = 1


@dataclass(frozen=True)
class Shard:
    """One unit of work: shard `index` holds global showers [start, stop)."""

    index: int
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def file_name(self) -> str:
        return shard_file_name(self.index)


def shard_file_name(index: int) -> str:
    """`shard-00000.h5` for shard 0."""
    return f"{SHARD_PREFIX}-{index:05d}.h5"


def plan_shards(n_showers: int, shard_size: int) -> list[Shard]:
    """All shards of a generation of `n_showers` in `shard_size` pieces (the last one may be shorter)."""
    if n_showers < 1:
        raise ConfigError(f"n_showers must be ≥ 1, got {n_showers}")
    if shard_size < 1:
        raise ConfigError(f"shard_size must be ≥ 1, got {shard_size}")
    return [Shard(i, start, min(start + shard_size, n_showers))
            for i, start in enumerate(range(0, n_showers, shard_size))]


def _streams(seed: int, spawn_key: tuple[int, ...]) -> tuple[np.random.Generator, int]:
    energy_seq, torch_seq = np.random.SeedSequence(seed, spawn_key=spawn_key).spawn(2)
    torch_seed = int(torch_seq.generate_state(1, np.uint64)[0]) >> 1  # torch.manual_seed takes < 2**63
    return np.random.default_rng(energy_seq), torch_seed


def shard_streams(seed: int, index: int) -> tuple[np.random.Generator, int]:
    """(numpy generator for the incident energies, torch seed for sampling) of shard `index`."""
    return _streams(seed, (_SHARD_STREAMS, index))


def validation_streams(seed: int) -> tuple[np.random.Generator, int]:
    """(numpy generator picking reference rows, torch seed for the validation sample) of the run."""
    return _streams(seed, (_VALIDATION_STREAMS,))


def shard_energies(spec: EnergySpec, seed: int, shard: Shard) -> tuple[np.ndarray, int]:
    """Incident energies (rows,) float32 MeV of `shard` and the torch seed for its showers."""
    rng, torch_seed = shard_streams(seed, shard.index)
    return spec.sample(rng, shard.rows, shard.start).astype(np.float32), torch_seed


def shard_path(out_dir: str | Path, index: int) -> Path:
    """`out_dir/shard-{index:05d}.h5`."""
    return Path(out_dir) / shard_file_name(index)
