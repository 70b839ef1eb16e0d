"""Which driver a run belongs to, and whether that driver is still alive: a killed driver's run must not stay
RUNNING forever. Runs are tagged with the driver's host, PID and process start time; a later run in the same
experiment ends the RUNNING runs of this host whose PID is free or taken by a process that started later."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

HOST_TAG = "caloray.host"
PID_TAG = "caloray.pid"
#: The driver process's start time (s since the epoch): a PID reused by a later process has another one.
PID_START_TAG = "caloray.pid_start"
OUTPUT_TAG = "caloray.output_dir"
KILLED_TAG = "caloray.killed"
#: Two readings of one process's start time differ by clock-tick rounding only; another process differs more.
_START_TOLERANCE_S = 0.5


def process_start_time(pid: int) -> float | None:
    """Start time (s since the epoch) of process `pid`, or None when no such process exists."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # alive, owned by someone else: its start time cannot be compared
        return float("nan")


def driver_tags(out_dir: str | Path | None = None) -> dict[str, str]:
    """Host, PID and process start time of this driver (and its output folder), the tags `mark_killed_runs`
    reads to tell a live driver from a killed one."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
            PID_START_TAG: repr(process_start_time(os.getpid()))}
    if out_dir is not None:
        tags[OUTPUT_TAG] = str(out_dir)
    return tags


def _driver_gone(tags: Mapping[str, str]) -> bool:
    try:
        pid, started = int(tags[PID_TAG]), float(tags[PID_START_TAG])
    except (KeyError, ValueError):
        return False  # not a run that recorded its driver: nothing to judge it by
    now = process_start_time(pid)
    if now is None:
        return True
    return now == now and abs(now - started) > _START_TOLERANCE_S  # a NaN (no access) counts as alive


def mark_killed_runs(client: MlflowClient, experiment_id: str, *, by: str | None = None) -> list[str]:
    """End as KILLED the RUNNING runs in `experiment_id` whose driver ran on this host and is gone (its PID is
    free, or taken by a process that started later), with a `caloray.killed` tag saying so; returns their ids.

    Runs of other hosts are left alone: their PIDs mean nothing here."""
    host = socket.gethostname()
    filter_string = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    killed = []
    for run in client.search_runs([experiment_id], filter_string=filter_string, max_results=1000):
        tags = run.data.tags
        if not _driver_gone(tags):
            continue
        note = f"driver PID {tags[PID_TAG]} on {host} ended without closing the run"
        client.set_tag(run.info.run_id, KILLED_TAG, note + (f" (found by run {by})" if by else ""))
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        killed.append(run.info.run_id)
    return killed
