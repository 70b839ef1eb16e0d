"""One generated shard: its arrays, attributes and records.

Every shard file stores, besides the CaloChallenge datasets, attributes naming the generation (model, seed,
shard index, run fingerprint) and `content_sha256`, the sha256 of its `incident_energies` then `showers` bytes
(float32, C order). Whether an existing shard is reused is the shard runner's decision
(`caloray.pipelines.shards`: recorded sha256 of the file, under the same run identity).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from caloray.generate.energies import EnergySpec
from caloray.generate.models import ShowerSampler, generate_showers, sha256_file
from caloray.generate.plan import Shard, shard_energies, shard_path
from caloray.io.hdf5 import write_showers

GENERATOR = "caloray.generate"


@dataclass(frozen=True)
class ShardRecord:
    """A finished shard: file name, rows, first global shower index and checksums (hex sha256)."""

    index: int
    file: str
    rows: int
    first_shower_index: int
    sha256: str
    content_sha256: str
    seconds: float = field(default=0.0, compare=False)

    def manifest_entry(self) -> dict[str, Any]:
        """The record without timing (what manifest.json lists)."""
        entry = asdict(self)
        entry.pop("seconds")
        return entry


def content_sha256(energies: np.ndarray, showers: np.ndarray) -> str:
    """sha256 of the float32 C-order bytes of incident energies (N,) then showers (N, V)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(energies, dtype=np.float32).reshape(-1).tobytes())
    digest.update(np.ascontiguousarray(showers, dtype=np.float32).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardContext:
    """Everything a worker needs to write shards of one generation (small and picklable)."""

    out_dir: str
    seed: int
    energies: EnergySpec
    n_showers: int
    n_shards: int
    shard_size: int
    batch_size: int
    fingerprint: str
    attrs: dict[str, Any]
    geometry: str | None = None


def shard_attrs(context: ShardContext, shard: Shard, content: str) -> dict[str, Any]:
    """HDF5 attributes of one shard (provenance of the generation plus its content checksum)."""
    return {
        **context.attrs,
        "generator": GENERATOR,
        "seed": context.seed,
        "shard_index": shard.index,
        "n_shards": context.n_shards,
        "first_shower_index": shard.start,
        "shard_size": context.shard_size,
        "energies": context.energies.text,
        "run_fingerprint": context.fingerprint,
        "content_sha256": content,
        "note": "showers sampled from a learned surrogate model (not Geant4)",
    }


def generated_shard(sampler: ShowerSampler, shard: Shard, context: ShardContext,
                    device: str = "cpu") -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Incident energies (rows,) and showers (rows, V) float32 MeV of `shard` (from its own seeds), and the
    attributes its file carries."""
    energies, torch_seed = shard_energies(context.energies, context.seed, shard)
    showers = generate_showers(sampler, energies, torch_seed, context.batch_size, device)
    return energies, showers, shard_attrs(context, shard, content_sha256(energies, showers))


def write_generated_shard(sampler: ShowerSampler, shard: Shard, context: ShardContext,
                          device: str = "cpu") -> ShardRecord:
    """Generate `shard` and write it (without Ray, atomically); returns its record."""
    began = time.perf_counter()
    energies, showers, attrs = generated_shard(sampler, shard, context, device)
    path = write_showers(shard_path(context.out_dir, shard.index), showers, energies.reshape(-1, 1),
                         geometry=context.geometry, attrs=attrs)
    return ShardRecord(shard.index, path.name, shard.rows, shard.start, sha256_file(path), attrs["content_sha256"],
                       time.perf_counter() - began)
