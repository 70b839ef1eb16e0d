"""Process-level set-up shared by the CLI and Ray jobs: Ray connection, quiet logs, output folders."""

from __future__ import annotations

import logging
import os
import threading

import ray

#: Seeded sampling (torch.manual_seed, then draws) uses torch's process-wide RNG. Ray Data can run several
#: batches of one actor on threads, so actors hold this lock from seeding to the last draw of a batch.
TORCH_RNG_LOCK = threading.Lock()

SMALL_CLUSTER_CPUS = 4

#: Niceness of the Ray workers caloray starts. Ray's default (15) keeps a node's raylet and GCS responsive
#: under a runaway task, but workers at nice 15 lose a core to any other runnable process: on a 2-core
#: machine that alone kept ingest at 1.0× from 1 → 2 workers. caloray's tasks are its workload, so they run
#: at the driver's priority; `RAY_worker_niceness` set by the user wins. Applies to Ray started here only
#: (a cluster's workers get their raylet's setting).
WORKER_NICENESS = 0

#: Ray Data loggers that repeat, at ERROR level, the exception an aborted dataset execution raises anyway.
RAY_DATA_ABORT_LOGGERS = ("ray.data._internal.execution.streaming_executor_state", "ray.data.exceptions")


def worker_niceness_env() -> None:
    """Set `RAY_worker_niceness` (read by the raylet at start) to WORKER_NICENESS unless already set."""
    os.environ.setdefault("RAY_worker_niceness", str(WORKER_NICENESS))


def worker_device(use_gpu: bool) -> str:
    """"cuda" when the worker was given a GPU and sees one, else "cpu"."""
    import torch

    return "cuda" if use_gpu and torch.cuda.is_available() else "cpu"


def ray_job_id() -> str | None:
    """The id of the Ray job this driver runs as (None without a Ray connection), for run records."""
    return ray.get_runtime_context().get_job_id() if ray.is_initialized() else None


def init_ray(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True) -> None:
    """Connect to `address` (or `RAY_ADDRESS`), else start a local Ray; idempotent.

    Ray Data keeps its progress bars; its per-operator INFO logging is lowered to warnings.
    """
    if quiet:
        for name in ("ray", "ray.data", "ray.train", "ray.tune"):
            logging.getLogger(name).setLevel(logging.WARNING)
        for name in RAY_DATA_ABORT_LOGGERS:  # the failed task's error reaches the caller, which reports it
            logging.getLogger(name).setLevel(logging.CRITICAL)
        os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        kwargs: dict = {"include_dashboard": False} if address is None else {}
        if num_cpus is not None and address is None:
            kwargs["num_cpus"] = num_cpus
        if address is None:
            worker_niceness_env()
        ray.init(address=address, log_to_driver=not quiet, configure_logging=not quiet, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    ctx.print_on_execution_start = False
    # An error raised in a map UDF reaches the driver as itself (RayTaskError(ShowerFileError)), not as a
    # UserCodeException that keeps only its text, so the CLI reports caloray's errors as one line + exit 2.
    ctx.raise_original_map_exception = True
    if ray.cluster_resources().get("CPU", 0) <= SMALL_CLUSTER_CPUS:
        # Ray Data reserves half of the cluster per operator; on a laptop-sized node that leaves a
        # single-operator pipeline (read → map) one task at a time. Measured on 2 CPUs: HDF5 read
        # 1.0 s with the reservation, 0.55 s without (plain Ray tasks: 0.47 s).
        ctx.op_resource_reservation_enabled = False
