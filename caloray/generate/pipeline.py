"""The generation worker of the shared shard runner: loads the (pinned) model once per actor, then generates
and writes whole shards (`caloray.pipelines.shards`: lock, identity check, verified resume, manifest).

Unit i is shard i; its bytes depend only on (seed, i, the energy spec, the model, the batch size and the
device type), so a retried or resumed shard rewrites the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caloray.generate.models import load_sampler
from caloray.generate.plan import Shard
from caloray.generate.shards import ShardContext, generated_shard
from caloray.io.hdf5 import write_showers
from caloray.pipelines.shards import Unit, UnitWorker
from caloray.runtime import TORCH_RNG_LOCK


@dataclass(frozen=True)
class WorkerSpec:
    """What a generation actor loads and writes (picklable; only model references travel, never weights)."""

    model: Any
    layer_model: Any
    tracking_uri: str | None
    use_gpu: bool
    context: ShardContext


def shard_unit(shard: Shard) -> Unit:
    """The runner's unit of shard `shard` (its key: shard index and global row range)."""
    return Unit(shard.index, shard.file_name, shard.rows, {"shard": shard.index, "start": shard.start,
                                                           "stop": shard.stop})


class ShardWriter(UnitWorker):
    """Generates one shard per unit; records its content checksum."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec

    def setup(self, device: str) -> None:
        self.device = device
        self.sampler = load_sampler(self.spec.model, self.spec.layer_model, self.spec.tracking_uri).to(device)

    def compute(self, unit: Unit) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        shard = Shard(unit.index, unit.key["start"], unit.key["stop"])
        with TORCH_RNG_LOCK:  # the shard seeds torch's global RNG once, then draws batch by batch
            result = generated_shard(self.sampler, shard, self.spec.context, self.device)
        self.content = result[2]["content_sha256"]
        return result

    def write(self, path: Path, result: tuple[np.ndarray, np.ndarray, dict[str, Any]]) -> None:
        energies, showers, attrs = result
        write_showers(path, showers, energies.reshape(-1, 1), geometry=self.spec.context.geometry, attrs=attrs)

    def stats(self) -> dict[str, Any]:
        return {"content_sha256": self.content}
