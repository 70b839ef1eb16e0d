"""Writing one generated shard atomically, and deciding whether an existing shard file is valid.

Every shard file stores, besides the CaloChallenge datasets, attributes naming the generation (model, seed,
shard index, run fingerprint) and `content_sha256`, the sha256 of its `incident_energies` then `showers` bytes
(float32, C order). A shard is valid when its file checksum matches a recorded one (manifest or journal), or,
without a record, when its attributes and content checksum match what this generation would write.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from caloray.errors import ShowerFileError
from caloray.generate.energies import EnergySpec
from caloray.generate.models import ShowerSampler, generate_showers, sha256_file
from caloray.generate.plan import SHARD_PREFIX, Shard, shard_energies, shard_path
from caloray.io.hdf5 import ENERGY_KEY, SHOWERS_KEY, write_showers

GENERATOR = "caloray.generate"
JOURNAL_FILE = "shards.jsonl"


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


def write_generated_shard(sampler: ShowerSampler, shard: Shard, context: ShardContext,
                          device: str = "cpu") -> ShardRecord:
    """Generate `shard` (energies and showers from its own seeds) and write it atomically; returns its record."""
    began = time.perf_counter()
    energies, torch_seed = shard_energies(context.energies, context.seed, shard)
    showers = generate_showers(sampler, energies, torch_seed, context.batch_size, device)
    content = content_sha256(energies, showers)
    path = write_showers(shard_path(context.out_dir, shard.index), showers, energies.reshape(-1, 1),
                         geometry=context.geometry, attrs=shard_attrs(context, shard, content))
    return ShardRecord(shard.index, path.name, shard.rows, shard.start, sha256_file(path), content,
                       time.perf_counter() - began)


def _attr(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value.item() if isinstance(value, np.generic) else value


def verify_shard_content(path: Path, shard: Shard, fingerprint: str) -> ShardRecord | None:
    """Full check of a shard without a recorded checksum: attributes, shapes and content checksum.

    Returns its record, or None when the file is unreadable, truncated, from another generation or altered.
    """
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _attr(v) for k, v in f.attrs.items()}
            energies = np.asarray(f[ENERGY_KEY][...]).reshape(-1)
            showers = np.asarray(f[SHOWERS_KEY][...])
    except (OSError, KeyError, ValueError, ShowerFileError):
        return None
    expected = {"run_fingerprint": fingerprint, "shard_index": shard.index, "first_shower_index": shard.start}
    if any(attrs.get(k) != v for k, v in expected.items()) or len(energies) != shard.rows or len(showers) != shard.rows:
        return None
    content = content_sha256(energies, showers)
    if energies.dtype != np.float32 or showers.dtype != np.float32 or attrs.get("content_sha256") != content:
        return None
    return ShardRecord(shard.index, path.name, shard.rows, shard.start, sha256_file(path), content)


def existing_shard(out_dir: Path, shard: Shard, fingerprint: str, recorded: ShardRecord | None) -> ShardRecord | None:
    """The valid existing file of `shard`, or None when it must be (re)generated.

    With a recorded checksum (manifest or journal) the file's sha256 and row count must match it; otherwise
    the file is checked in full (`verify_shard_content`).
    """
    path = shard_path(out_dir, shard.index)
    if not path.is_file():
        return None
    if recorded is not None:
        if recorded.rows == shard.rows and recorded.first_shower_index == shard.start \
                and sha256_file(path) == recorded.sha256:
            return recorded
        return None
    return verify_shard_content(path, shard, fingerprint)


def remove_temp_files(out_dir: Path) -> list[Path]:
    """Delete leftover temporary shard files (`.shard-*.h5.tmp*`) of interrupted writers; returns them."""
    stale = sorted(out_dir.glob(f".{SHARD_PREFIX}-*.h5.tmp*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def read_journal(out_dir: Path) -> dict[int, ShardRecord]:
    """Shard records appended by earlier (possibly interrupted) runs; unreadable lines are skipped."""
    path = out_dir / JOURNAL_FILE
    records: dict[int, ShardRecord] = {}
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        try:
            record = ShardRecord(**json.loads(line))
        except (ValueError, TypeError):
            continue  # a line cut short by a crash
        records[record.index] = record
    return records


def append_journal(out_dir: Path, record: ShardRecord) -> None:
    """Append one finished shard to the journal (flushed and fsynced, so a crash loses at most that line)."""
    path = out_dir / JOURNAL_FILE
    cut = False
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
    with open(path, "a") as f:
        f.write(("\n" if cut else "") + json.dumps(asdict(record), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
