"""Train an ensemble: one Ray Train `TorchTrainer` per member, members run concurrently.

Concurrency: the K `trainer.fit()` calls are launched from driver threads, at most as many at once as
the cluster's CPUs (and GPUs) can hold (`max_concurrent_members`); with fewer resources the members
run in waves, down to one at a time (the sequential fallback). Each member is its own Ray Train run
stored under `<output_dir>/ray/member-KK`, so an interrupted member resumes from its last checkpoint
when `train_ensemble(..., resume=True)` is called with the same config and output folder (Ray Train
restores the run's checkpoint manager from storage; members that already finished are not rerun).

Resume is bit-exact with one worker per member (rows reach the worker in a fixed order, see
`caloray.train.loop`). With several workers Ray Data's `streaming_split` hands blocks to workers
dynamically, so a resumed (or repeated) DDP run sees the same rows per epoch but possibly split
differently between workers: statistically equivalent, not bit-identical. `output_dir` must be a path
on a filesystem shared by driver and workers (the default local cluster, or NFS).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import ray
import ray.train
import yaml
from ray.train.torch import TorchTrainer

from caloray.config import to_dict
from caloray.errors import ConfigError
from caloray.train.build import ModelBuilder, default_model_builder, resolve_model_kwargs
from caloray.train.checkpoint import STATE_FILE, read_history_state
from caloray.train.config import TrainConfig, load_train_config
from caloray.train.data import PreparedData, load_showers, prepare_data
from caloray.train.errors import NonFiniteLossError, TrainingError
from caloray.train.loop import train_member_loop
from caloray.train.optim import steps_per_epoch
from caloray.train.progress import TrainingProgress
from caloray.train.result import MemberResult, TrainResult
from caloray.train.seeds import member_seed

if TYPE_CHECKING:
    import ray.data

logger = logging.getLogger(__name__)

CONFIG_FILE = "train-config.yaml"
#: Config sections that must not change between a run and its resumption.
RESUME_INVARIANT = ("model", "data", "optimizer", "schedule", "epochs", "batch_size", "seed")


def train_ensemble(
    config: TrainConfig,
    dataset: ray.data.Dataset | None = None,
    *,
    resume: bool = False,
    build_model: ModelBuilder | None = None,
) -> TrainResult:
    """Train `config.ensemble.members` members and (if enabled) track and register them in MLflow.

    `dataset` (columns "showers", "incident_energies") replaces reading `config.data.paths`;
    `build_model(kind, kwargs)` replaces `caloray.models.build` (it is shipped to the workers).
    Raises `ConfigError` for bad input, `NonFiniteLossError`/`TrainingError` naming the failed member.
    """
    build_model = build_model or default_model_builder
    output_dir = Path(config.output_dir).resolve()
    _check_output(output_dir, config, resume=resume)
    model_kwargs = resolve_model_kwargs(config)
    probe = build_model(config.model.kind, dict(model_kwargs))
    data = prepare_data(dataset if dataset is not None else load_showers(config), config, probe)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

    tracker = None
    if config.tracking.enabled:
        from caloray.tracking import EnsembleTracker

        tracker = EnsembleTracker.start(config, output_dir, data_summary=_data_summary(data),
                                        example=_example_rows(data))
    members: dict[int, MemberResult] = {}
    lock = threading.Lock()

    def run_member(index: int) -> None:
        result = _fit_member(index, config, model_kwargs, data, output_dir, build_model)
        with lock:
            members[index] = result
            if tracker is not None:
                tracker.log_member(result)

    try:
        with TrainingProgress(output_dir / "ray", config.ensemble.members, config.epochs):
            failures = _run_concurrently(run_member, config)
        if failures:
            raise _failure_error(failures)
    except BaseException as exc:
        if tracker is not None:
            tracker.fail(exc)
        raise
    result = TrainResult(
        config=config,
        members=[members[k] for k in sorted(members)],
        output_dir=output_dir,
        n_voxels=data.n_voxels,
        n_train=data.n_train,
        n_validation=data.n_validation,
    )
    if tracker is not None:
        tracker.finish(result)
    return result


def run_training(config_path: str | Path, *, resume: bool = False, tracking_uri: str | None = None) -> TrainResult:
    """CLI entry: load the YAML config, start Ray if needed, train, print where results are.

    tracking_uri: replaces the config's `tracking.tracking_uri` (the command's --tracking-uri).
    """
    from caloray.runtime import init_ray

    config = load_train_config(config_path)
    if tracking_uri:
        config.tracking.tracking_uri = tracking_uri
    init_ray()
    result = train_ensemble(config, resume=resume)
    for member in result.members:
        print(f"member {member.index}: val_loss {member.final_val_loss:.4f} → {member.model_path}")
    if result.tracking_uri:
        from caloray.tracking import ui_command

        ui = ui_command(result.tracking_uri, result.output_dir)
        print(f"MLflow run {result.mlflow_run_id}; browse with: {ui}")
    if result.registered:
        print(f"registered model {result.registered[0]!r} version {result.registered[1]}")
    return result


def max_concurrent_members(config: TrainConfig) -> int:
    """How many members the cluster can train at once (≥ 1); raises if one member can never fit."""
    resources = ray.cluster_resources()
    ens = config.ensemble
    limits = [ens.members]
    needs = {"CPU": ens.num_workers * ens.cpus_per_worker}
    if ens.use_gpu:
        needs["GPU"] = float(ens.num_workers)
    for name, need in needs.items():
        have = resources.get(name, 0.0)
        if have < need:
            raise ConfigError(
                f"ensemble: one member needs {need:g} {name} (num_workers × per-worker), the Ray cluster has"
                f" {have:g}; lower ensemble.num_workers/cpus_per_worker"
            )
        limits.append(math.floor(have / need))
    return max(1, min(limits))


def _run_concurrently(run_member: Callable[[int], None], config: TrainConfig) -> dict[int, BaseException]:
    """Run all members, `max_concurrent_members` at a time; returns the failures by member index."""
    n_concurrent = max_concurrent_members(config)
    logger.info("training %d members, %d at a time", config.ensemble.members, n_concurrent)
    failures: dict[int, BaseException] = {}
    with ThreadPoolExecutor(max_workers=n_concurrent, thread_name_prefix="caloray-member") as pool:
        futures = {k: pool.submit(run_member, k) for k in range(config.ensemble.members)}
        for k, future in futures.items():
            error = future.exception()
            if error is not None:
                failures[k] = error
    return failures


def _fit_member(
    index: int,
    config: TrainConfig,
    model_kwargs: dict[str, Any],
    data: PreparedData,
    output_dir: Path,
    build_model: ModelBuilder,
) -> MemberResult:
    """Train (or finish training) one member with its own Ray Train run."""
    seed = member_seed(config.seed, index)
    name = member_run_name(index)
    storage = output_dir / "ray"
    finished = _finished_checkpoint(storage / name, config.epochs)
    started = time.time()
    if finished is not None:
        return MemberResult(index, seed, _history(finished), finished, started, started)
    ens = config.ensemble
    trainer = TorchTrainer(
        train_member_loop,
        train_loop_config={
            "config": to_dict(config),
            "member": index,
            "seed": seed,
            "model_kwargs": model_kwargs,
            "build_model": build_model,
            "steps_per_epoch": steps_per_epoch(data.n_train, ens.num_workers, config.batch_size),
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=ens.num_workers,
            use_gpu=ens.use_gpu,
            resources_per_worker={"CPU": ens.cpus_per_worker},
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=str(storage),
            failure_config=ray.train.FailureConfig(max_failures=ens.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        datasets={"train": data.train, "validation": data.validation},
        dataset_config=ray.train.DataConfig(execution_options=_ordered_execution()),
    )
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as exc:
        raise _member_error(index, exc) from exc
    if result.checkpoint is None:
        raise TrainingError(f"ensemble member {index}: training ended without a checkpoint")
    checkpoint_dir = Path(result.checkpoint.path)
    return MemberResult(index, seed, _history(checkpoint_dir), checkpoint_dir, started, time.time())


def member_run_name(index: int) -> str:
    """The Ray Train run (and storage folder) name of member `index`."""
    return f"member-{index:02d}"


def _ordered_execution() -> Any:
    from ray.data import ExecutionOptions

    return ExecutionOptions(preserve_order=True)


def _finished_checkpoint(run_dir: Path, epochs: int) -> Path | None:
    """The last checkpoint folder of a member that already trained all `epochs`, else None."""
    if not run_dir.is_dir():
        return None
    checkpoints = sorted(c for c in run_dir.glob("epoch-*") if (c / STATE_FILE).is_file())
    if not checkpoints:
        return None
    history = _history(checkpoints[-1])
    return checkpoints[-1] if history and history[-1]["epoch"] >= epochs else None


def _history(checkpoint_dir: Path) -> list[dict[str, float]]:
    return list(read_history_state(checkpoint_dir)["history"])


def _check_output(output_dir: Path, config: TrainConfig, *, resume: bool) -> None:
    """Refuse to overwrite an earlier run, or to resume one whose config changed."""
    saved = output_dir / CONFIG_FILE
    if not saved.is_file():
        return
    if not resume:
        raise ConfigError(
            f"{output_dir}: holds an earlier training run; resume it (resume=True, `caloray train"
            " --resume`) or choose another output_dir"
        )
    previous, current = yaml.safe_load(saved.read_text()) or {}, to_dict(config)
    changed = [k for k in RESUME_INVARIANT if previous.get(k) != current.get(k)]
    if changed:
        raise ConfigError(f"{output_dir}: cannot resume, the config changed in: {', '.join(changed)}")


def _data_summary(data: PreparedData) -> dict[str, int | float]:
    return {"n_train": data.n_train, "n_validation": data.n_validation, "n_voxels": data.n_voxels,
            "incident_energy_min_mev": data.energy_min_mev, "incident_energy_max_mev": data.energy_max_mev}


def _example_rows(data: PreparedData, n: int = 3) -> dict[str, np.ndarray]:
    """The first `n` held-out rows (training rows when nothing is held out): the registered model's input example."""
    rows = data.validation.take(n) if data.n_validation else data.train.take(n)
    return {"showers": np.stack([np.asarray(r["showers"], dtype=np.float64) for r in rows]),
            "incident_energies": np.array([float(np.asarray(r["incident_energies"]).reshape(-1)[0]) for r in rows])}


def _member_error(index: int, exc: BaseException) -> BaseException:
    """A caloray error naming the member, keeping the type of a non-finite loss."""
    causes = list(getattr(exc, "worker_failures", {}).values()) or [exc]
    for cause in causes:
        if isinstance(cause, NonFiniteLossError) or "NonFiniteLossError" in type(cause).__name__:
            return NonFiniteLossError(_first_line(cause, "NonFiniteLossError"))
    return TrainingError(f"ensemble member {index} failed: {_first_line(causes[0])}")


def _first_line(exc: BaseException, after: str | None = None) -> str:
    text = str(exc).strip()
    if after and after in text:
        text = text.rsplit(after, 1)[1].lstrip(": ")
    return text.splitlines()[0] if text else type(exc).__name__


def _failure_error(failures: dict[int, BaseException]) -> BaseException:
    """One error for all failed members (the first one's type and cause)."""
    first_index = min(failures)
    first = failures[first_index]
    if len(failures) == 1 and isinstance(first, ConfigError | TrainingError | NonFiniteLossError):
        return first
    lines = "; ".join(f"member {k}: {_first_line(e)}" for k, e in sorted(failures.items()))
    error = TrainingError(f"{len(failures)} ensemble member(s) failed: {lines}")
    error.__cause__ = first
    return error
