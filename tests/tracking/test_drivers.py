"""`caloray.tracking.drivers`: runs record their driver, and the next run marks a killed driver's run KILLED."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from caloray.tracking.drivers import HOST_TAG, KILLED_TAG, PID_START_TAG, PID_TAG, mark_killed_runs
from caloray.tracking.run import Run

ROOT = Path(__file__).resolve().parents[2]


def _run(uri: str, run_id: str):
    return MlflowClient(tracking_uri=uri).get_run(run_id)


def test_runs_record_their_driver(store, tmp_path):
    with Run.start("exp", "r", tmp_path, tracking_uri=store) as run:
        pass
    tags = _run(store, run.run_id).data.tags
    assert tags[HOST_TAG] == socket.gethostname() and tags[PID_TAG] == str(os.getpid())
    assert tags["caloray.output_dir"] == str(tmp_path)
    import psutil

    assert float(tags[PID_START_TAG]) == pytest.approx(psutil.Process().create_time(), abs=0.5)


DRIVER = textwrap.dedent("""
    import sys, time
    from caloray.tracking.run import Run

    run = Run.start("exp", "driver", sys.argv[2], tracking_uri=sys.argv[1])
    with run.child("member-00"):
        pass
    print(run.run_id, flush=True)
    time.sleep(600)
""")


@pytest.mark.slow  # ≈30 s on a shared 2-core machine: a driver subprocess imports MLflow and opens the store
def test_a_killed_drivers_run_is_marked_killed_by_the_next_run(store, tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, store, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        killed_id = driver.stdout.readline().strip()
        assert killed_id, "the driver did not start its run"
        with Run.start("exp", "alive", tmp_path, tracking_uri=store) as alive:
            assert _run(store, killed_id).info.status == "RUNNING"  # its driver still runs: left alone
            assert _run(store, alive.run_id).info.status == "RUNNING"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    client = MlflowClient(tracking_uri=store)
    # A run of another host (its PID means nothing here) and one whose PID was reused by a later process.
    experiment_id = client.get_experiment_by_name("exp").experiment_id
    remote = client.create_run(experiment_id, tags={HOST_TAG: "elsewhere", PID_TAG: "1", PID_START_TAG: "0.0"})
    reused = client.create_run(experiment_id, tags={HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()),
                                                    PID_START_TAG: "12345.0"})
    with Run.start("exp", "next", tmp_path, tracking_uri=store) as next_run:
        pass
    ended = _run(store, killed_id)
    assert ended.info.status == "KILLED"
    assert f"driver PID {driver.pid}" in ended.data.tags[KILLED_TAG] and next_run.run_id in ended.data.tags[KILLED_TAG]
    assert _run(store, reused.info.run_id).info.status == "KILLED"
    assert _run(store, remote.info.run_id).info.status == "RUNNING"
    assert _run(store, next_run.run_id).info.status == "FINISHED"
    # Its member run had ended before the kill and stays FINISHED; a second sweep finds nothing left.
    members = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{killed_id}'")
    assert [m.info.status for m in members] == ["FINISHED"]
    assert mark_killed_runs(client, experiment_id) == []
