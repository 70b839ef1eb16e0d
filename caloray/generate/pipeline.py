"""Ray Data over shard indices: a pool of actors, each loading the model once, generating and writing shards.

Each shard is one `map_batches` call (batch_size=1) on a `ShardGenerator` actor (one GPU per actor when
`use_gpu`). An actor that dies (killed worker, lost node) is restarted up to `max_restarts` times and its
shard retried; shards are deterministic and written atomically, so a retry rewrites the same bytes. With
`max_restarts=0` a crash fails the run, and rerunning the same command resumes it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import ray
import ray.data.exceptions
import ray.exceptions
import torch

from caloray.generate.models import GenerationError, ModelSource, load_sampler
from caloray.generate.plan import Shard
from caloray.generate.shards import ShardContext, ShardRecord, write_generated_shard
from caloray.runtime import TORCH_RNG_LOCK


@dataclass(frozen=True)
class WorkerSpec:
    """What a generation actor loads and writes (picklable; only model references travel, never weights)."""

    model: ModelSource
    layer_model: ModelSource | None
    tracking_uri: str | None
    use_gpu: bool
    context: ShardContext


def worker_device(use_gpu: bool) -> str:
    """"cuda" when the worker was given a GPU and sees one, else "cpu"."""
    return "cuda" if use_gpu and torch.cuda.is_available() else "cpu"


class ShardGenerator:
    """Ray Data actor: loads the (pinned) model once, then generates and writes every shard it receives."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.device = worker_device(spec.use_gpu)
        self.sampler = load_sampler(spec.model, spec.layer_model, spec.tracking_uri).to(self.device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = []
        for index, start, stop in zip(batch["index"], batch["start"], batch["stop"], strict=True):
            shard = Shard(int(index), int(start), int(stop))
            with TORCH_RNG_LOCK:  # the shard seeds torch's global RNG once, then draws batch by batch
                record = write_generated_shard(self.sampler, shard, self.spec.context, self.device)
            records.append(json.dumps(asdict(record)))
        return {"record": np.array(records)}


def default_actors(n_todo: int, use_gpu: bool) -> int:
    """One actor per GPU (GPU runs) or per CPU, never more than there are shards to write."""
    resources = ray.cluster_resources()
    available = int(resources.get("GPU", 0)) if use_gpu else int(resources.get("CPU", 1))
    return max(1, min(n_todo, available))


def run_shards(shards: Sequence[Shard], spec: WorkerSpec, *, actors: int | None = None, max_restarts: int = 3,
               on_record: Callable[[ShardRecord], None] | None = None) -> list[ShardRecord]:
    """Generate `shards` on an actor pool; `on_record` is called on the driver as each shard finishes.

    Returns the records in completion order. Ray must be initialized.
    """
    if not shards:
        return []
    n_actors = min(actors or default_actors(len(shards), spec.use_gpu), len(shards))
    items = [{"index": s.index, "start": s.start, "stop": s.stop} for s in shards]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    with warnings.catch_warnings():  # max_restarts / max_task_retries go through **ray_remote_args in Ray 2.60
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ds.map_batches(
            ShardGenerator,
            fn_constructor_args=(spec,),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_gpus=1 if spec.use_gpu else 0,
            num_cpus=1,
            max_restarts=max_restarts,
            max_task_retries=max_restarts,
        )
    records = []
    try:
        for row in ds.iter_rows():
            record = ShardRecord(**json.loads(str(row["record"])))
            records.append(record)
            if on_record is not None:
                on_record(record)
    except (ray.exceptions.RayError, ray.data.exceptions.UserCodeException,
            ray.data.exceptions.SystemException) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenerationError(f"generation stopped after {len(records)} of {len(shards)} shard(s) "
                              f"({type(exc).__name__}: {first_line}); the finished shards are kept: rerun the same "
                              "command to resume") from exc
    return records
