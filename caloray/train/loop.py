"""The per-worker training loop of one ensemble member (runs inside a Ray Train worker).

Determinism: every worker reseeds its global RNGs at the start of each epoch from
(member seed, epoch, rank), and shuffles its data shard with a seed from the same keys, so an epoch's
result depends only on the state at its start. Resuming from a checkpoint written after epoch e
therefore continues exactly as the uninterrupted run would, as long as the rows reach each worker in
the same order (always true with one worker per member; see `caloray.train.ensemble`).
"""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import ray.train
import ray.train.torch
import torch

from caloray.config import from_dict
from caloray.models.base import Batch, Surrogate
from caloray.train.build import ModelBuilder
from caloray.train.checkpoint import load_training_state, save_training_state
from caloray.train.config import TrainConfig
from caloray.train.errors import NonFiniteLossError
from caloray.train.optim import build_optimizer, build_scheduler
from caloray.train.seeds import derive_seed, seed_everything, shuffle_seed

COLUMNS = ("showers", "incident_energies")


class LossModule(torch.nn.Module):
    """Wraps a surrogate so that `forward(batch)` is its loss: DDP synchronizes gradients via forward."""

    def __init__(self, surrogate: Surrogate):
        super().__init__()
        self.surrogate = surrogate

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.surrogate.loss(batch)


def train_member_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Ray Train entry point: train member `loop_config["member"]`; rank 0 returns its history."""
    config = from_dict(TrainConfig, loop_config["config"], where="train config")
    member: int = loop_config["member"]
    seed: int = loop_config["seed"]
    build_model: ModelBuilder = loop_config["build_model"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()

    seed_everything(seed)
    surrogate = build_model(config.model.kind, dict(loop_config["model_kwargs"]))
    model = ray.train.torch.prepare_model(LossModule(surrogate))
    optimizer = build_optimizer(surrogate.parameters(), config.optimizer)
    scheduler, per_batch = build_scheduler(
        optimizer, config.schedule, epochs=config.epochs, steps_per_epoch=loop_config["steps_per_epoch"]
    )
    start_epoch, history = 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start_epoch, history = load_training_state(directory, surrogate, optimizer, scheduler)

    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("validation")
    if checkpoint is None and surrogate.needs_preprocessing_fit:  # a resumed member restored it
        _fit_preprocessing(surrogate, train_shard, config.data.preprocessing_rows)
    for epoch in range(start_epoch, config.epochs):
        seed_everything(derive_seed(seed, epoch, rank, 1))
        started = time.perf_counter()
        batches = train_shard.iter_torch_batches(
            batch_size=config.batch_size,
            dtypes=torch.float32,
            local_shuffle_buffer_size=config.data.shuffle_buffer or None,
            local_shuffle_seed=shuffle_seed(seed, epoch, rank),
        )
        train_loss, n_train, lr = _train_epoch(
            model, optimizer, scheduler if per_batch else None, batches, config, member=member, epoch=epoch
        )
        if not per_batch:
            scheduler.step()
        seconds = time.perf_counter() - started
        val_loss, _ = _evaluate(model, val_shard, batch_size=4 * config.batch_size)
        train_loss, n_train = _all_reduce_mean(train_loss, n_train, world)
        seconds = _all_max(seconds, world)
        record = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": lr,
            "epoch_seconds": seconds,
            "train_events_per_s": n_train / seconds if seconds > 0 else math.nan,
        }
        history.append(record)
        _report(record, history, surrogate, optimizer, scheduler, config, rank=rank)
    return {"history": history}


def _fit_preprocessing(surrogate: Surrogate, shard: Any, rows: int) -> None:
    """`surrogate.fit_preprocessing` on the first `rows` rows of this worker's shard, unshuffled (with DDP,
    rank 0's fitted buffers are broadcast to the other workers on the first forward)."""
    for batch in shard.iter_torch_batches(batch_size=rows, dtypes=torch.float32):
        surrogate.fit_preprocessing({key: batch[key] for key in COLUMNS})
        return


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    batches: Any,
    config: TrainConfig,
    *,
    member: int,
    epoch: int,
) -> tuple[float, int, float]:
    """One pass over the shard; returns (mean loss on this worker, rows seen, last lr used)."""
    model.train()
    total, count, lr = 0.0, 0, optimizer.param_groups[0]["lr"]
    for index, batch in enumerate(batches):
        batch = {key: batch[key] for key in COLUMNS}
        loss = model(batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"ensemble member {member}: training loss is {loss.item()} at epoch {epoch + 1}, batch index"
                f" {index} (0-based, worker rank {ray.train.get_context().get_world_rank()}); check the"
                " showers for NaN/inf values and try a lower optimizer.lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optimizer.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optimizer.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        if batch_scheduler is not None and batch_scheduler.last_epoch < _total_steps(batch_scheduler):
            batch_scheduler.step()
        rows = len(batch["incident_energies"])
        total += loss.item() * rows
        count += rows
    return (total / count if count else math.nan), count, lr


def _total_steps(scheduler: torch.optim.lr_scheduler.LRScheduler) -> float:
    """OneCycle's step budget (stepping past it raises); guards against a short final batch count."""
    return getattr(scheduler, "total_steps", math.inf)


@torch.no_grad()
def _evaluate(model: torch.nn.Module, shard: Any, *, batch_size: int) -> tuple[float, int]:
    """Mean loss over the validation shard, averaged over all workers."""
    model.eval()
    total, count = 0.0, 0
    for batch in shard.iter_torch_batches(batch_size=batch_size, dtypes=torch.float32):
        batch = {key: batch[key] for key in COLUMNS}
        rows = len(batch["incident_energies"])
        total += model(batch).item() * rows
        count += rows
    return _all_reduce_mean(total / count if count else 0.0, count, ray.train.get_context().get_world_size())


def collective_device() -> torch.device:
    """Where the epoch-metric tensors of `_all_reduce_mean`/`_all_max` must live for this process group.

    NCCL (Ray Train's backend when `use_gpu`) only reduces CUDA tensors: a CPU tensor fails with "no backend
    type associated with device type cpu". Gloo, and mixed groups such as "cpu:gloo,cuda:nccl", take CPU ones.
    """
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce_mean(mean: float, count: int, world: int) -> tuple[float, int]:
    """The row-weighted mean over workers and the total row count."""
    if world > 1:
        values = torch.tensor([mean * count, float(count)], dtype=torch.float64, device=collective_device())
        torch.distributed.all_reduce(values)
        total, count = float(values[0]), int(values[1])
        return (total / count if count else math.nan), count
    return (mean if count else math.nan), count


def _all_max(value: float, world: int) -> float:
    if world > 1:
        tensor = torch.tensor([value], dtype=torch.float64, device=collective_device())
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return float(tensor[0])
    return value


def _report(
    record: dict[str, float],
    history: list[dict[str, float]],
    surrogate: Surrogate,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    config: TrainConfig,
    *,
    rank: int,
) -> None:
    """Report the epoch's metrics; every `checkpoint_every` epochs (and the last) rank 0 adds a checkpoint."""
    epoch = int(record["epoch"])
    due = epoch % config.checkpoint_every == 0 or epoch == config.epochs
    if not (due and rank == 0):
        ray.train.report(record, checkpoint=None)
        return
    with tempfile.TemporaryDirectory(prefix="caloray-ckpt-") as directory:
        save_training_state(directory, surrogate, optimizer, scheduler, epoch=epoch, history=history)
        ray.train.report(
            record,
            checkpoint=ray.train.Checkpoint.from_directory(directory),
            checkpoint_dir_name=f"epoch-{epoch:04d}",
        )
