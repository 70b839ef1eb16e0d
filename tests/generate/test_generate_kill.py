"""A generation worker killed mid-run (SIGKILL of its process): fail-fast then resume, or restart in place.

Either way the output folder ends with exactly n distinct showers whose files match the manifest checksums.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import ray

from caloray.errors import CalorayError
from caloray.generate import GenerationConfig, generate
from caloray.generate.models import sha256_file
from caloray.io import read_shower_file

N_SHARDS, SHARD = 16, 20_000
ACTOR_CLASS = "_UnitActor"


def _config(world, out, max_restarts: int) -> GenerationConfig:
    return GenerationConfig(model=str(world.model_path), n_showers=N_SHARDS * SHARD, shard_size=SHARD, out=str(out),
                            energies="log-uniform:1GeV-100GeV", validate_n=0, actors=1, batch_size=500,
                            max_restarts=max_restarts)


class Killer(threading.Thread):
    """Once the first shard file exists, SIGKILL the process of every live generation actor (once)."""

    def __init__(self, out) -> None:
        super().__init__(daemon=True)
        self.out, self.killed, self.shards_then = out, [], 0

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(self.out.glob("shard-*.h5")):
            time.sleep(0.02)
        for info in ray._private.state.actors().values():
            if info.get("ActorClassName") == ACTOR_CLASS and info.get("State") == "ALIVE" and info.get("Pid"):
                os.kill(int(info["Pid"]), signal.SIGKILL)
                self.killed.append(int(info["Pid"]))
        self.shards_then = len(list(self.out.glob("shard-*.h5")))


def _check_complete(result) -> None:
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["total_rows"] == N_SHARDS * SHARD and len(manifest["shards"]) == N_SHARDS
    for entry in manifest["shards"]:
        assert entry["sha256"] == sha256_file(result.out_dir / entry["file"])
    rows = np.concatenate([read_shower_file(result.out_dir / e["file"])["showers"] for e in manifest["shards"]])
    assert len(rows) == N_SHARDS * SHARD and len(np.unique(rows, axis=0)) == N_SHARDS * SHARD
    assert not list(result.out_dir.glob(".shard-*"))


@pytest.mark.slow
def test_killed_worker_fails_fast_and_a_rerun_completes_exactly_n(ray_local, world, tmp_path) -> None:
    out = tmp_path / "out"
    killer = Killer(out)
    killer.start()
    with pytest.raises(CalorayError, match="rerun the same command"):
        generate(_config(world, out, max_restarts=0), progress=False)
    killer.join()
    assert killer.killed and 1 <= killer.shards_then < N_SHARDS
    assert not (out / "manifest.json").exists()
    result = generate(_config(world, out, max_restarts=0), progress=False)
    assert 0 < result.n_generated < N_SHARDS * SHARD  # only the missing shards
    _check_complete(result)


@pytest.mark.slow
def test_killed_worker_is_restarted_and_its_shard_retried(ray_local, world, tmp_path) -> None:
    out = tmp_path / "out"
    killer = Killer(out)
    killer.start()
    result = generate(_config(world, out, max_restarts=2), progress=False)
    killer.join()
    assert killer.killed and killer.shards_then < N_SHARDS
    assert result.n_generated == N_SHARDS * SHARD
    _check_complete(result)
