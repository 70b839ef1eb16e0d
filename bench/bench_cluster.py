"""Local cluster 1 → 2 node speed-up: a fixed Ray Data workload submitted as a Ray Job, first to the head node
alone (1 CPU), then again after a worker node (1 CPU) joined (deploy/local/start.sh --ray-only).

The workload maps blocks of simulated ECAL+HCAL pion showers (`caloray.sim.simulate_batch`, one block per
Ray Data task, summed deposited energy out) over `ray.data.range`; the job times it after a warm-up pass that
starts the worker processes on every node, and prints the seconds. Submission and start-up are not timed.
PostgreSQL and MLflow are not started. `--quick` uses 16 blocks of 100 showers (seconds; the speed-up is
noisy), the full run 64 blocks of 400. On a shared 2-core machine the speed-up cannot exceed the idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

Row = tuple[str, float, str]
REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / "deploy" / "local"
RESULT = "CALORAY_BENCH_CLUSTER_RESULT="


def workload(blocks: int, showers: int) -> dict[str, float]:
    """Inside the job: warm up every node, then time `blocks` Ray Data tasks of `showers` showers each."""
    import numpy as np
    import ray

    from caloray.runtime import init_ray
    from caloray.sim import SimConfig, simulate_batch

    init_ray()
    config = SimConfig.preset("ecal-hcal", particle="pion", seed=3)

    def block(batch: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        totals = []
        for seed in batch["id"]:
            _, showers = simulate_batch(config, np.random.default_rng(int(seed)), n)
            totals.append(float(np.sum(showers)))
        return {"id": batch["id"], "deposited_mev": np.asarray(totals)}

    def run(n_blocks: int, n: int) -> float:
        ds = ray.data.range(n_blocks, override_num_blocks=n_blocks)
        return float(ds.map_batches(block, fn_kwargs={"n": n}, batch_size=1).sum("deposited_mev"))

    nodes = len([n for n in ray.nodes() if n["Alive"]])
    run(2 * nodes, 10)  # warm-up: worker processes and imports on every node
    began = time.perf_counter()
    run(blocks, showers)
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "nodes": nodes, "cpus": ray.cluster_resources().get("CPU", 0)}


def _sh(script: str, *args: str, env: dict[str, str]) -> None:
    done = subprocess.run(["bash", str(LOCAL / script), *args], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _client_env(env: dict[str, str], state: Path) -> dict[str, str]:
    client = dict(env)
    for line in (state / "env.sh").read_text().splitlines():
        if line.startswith("export "):
            key, value = line.removeprefix("export ").split("=", 1)
            client[key] = value
    return client


def _submit(env: dict[str, str], blocks: int, showers: int) -> dict[str, float]:
    """Submit the workload as a Ray Job, wait for it, return what it measured."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    runtime_env = {"env_vars": {"TQDM_DISABLE": "1"},
                   "excludes": [".git", ".venv", "outputs", "mlruns", "*.h5", "__pycache__", "*.egg-info"]}
    done = subprocess.run(
        [ray_cli, "job", "submit", "--address", env["RAY_ADDRESS"], "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps(runtime_env), "--", "python", "-m", "bench.bench_cluster",
         "--workload", str(blocks), str(showers)],
        env=env, capture_output=True, text=True, timeout=1800, cwd=REPO)
    found = re.search(re.escape(RESULT) + r"(\{.*\})", done.stdout + done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"benchmark job failed (exit {done.returncode}):\n{done.stdout[-4000:]}\n"
                           f"{done.stderr[-4000:]}")
    return json.loads(found.group(1))


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workload", nargs=2, type=int, metavar=("BLOCKS", "SHOWERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workload:  # inside the submitted job
        print(RESULT + json.dumps(workload(*args.workload)), flush=True)
        return []
    blocks, showers = (16, 100) if args.quick else (64, 400)
    with tempfile.TemporaryDirectory(prefix="caloray-bench-cluster-") as tmp:
        state = Path(tmp) / "state"
        ports = subprocess.run([sys.executable, str(LOCAL / "cluster_util.py"), "free-ports", "3"],
                               capture_output=True, text=True, check=True).stdout.split()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
        env |= {"CALORAY_CLUSTER_STATE": str(state), "CALORAY_RAY_PORT": ports[0],
                "CALORAY_RAY_DASHBOARD_PORT": ports[1], "CALORAY_RAY_CLIENT_PORT": ports[2],
                "CALORAY_RAY_WORKER_PORT_BASE": str(22_000 + 1_000 * random.randrange(9)),
                "CALORAY_HEAD_CPUS": "1", "CALORAY_WORKER_CPUS": "1", "CALORAY_OBJECT_STORE_BYTES": "300000000"}
        try:
            _sh("start.sh", "--ray-only", "--no-worker", env=env)
            one = _submit(_client_env(env, state), blocks, showers)
            print(f"1 node:  {one['seconds']:.2f} s ({one['cpus']:g} CPU)", flush=True)
            _sh("start.sh", "--worker-only", env=env)
            two = _submit(_client_env(env, state), blocks, showers)
            print(f"2 nodes: {two['seconds']:.2f} s ({two['cpus']:g} CPUs)", flush=True)
        finally:
            _sh("stop.sh", "--purge", env=env)
    n = blocks * showers
    speedup = one["seconds"] / two["seconds"]
    print(f"1 → 2 node speed-up: {speedup:.2f}×  ({n} showers in {blocks} Ray Data tasks)", flush=True)
    return [
        (f"local cluster, 1 node (1 CPU): {n} ecal-hcal π⁺ in {blocks} Ray Data tasks", n / one["seconds"],
         "showers/s"),
        ("local cluster, 2 nodes (1 + 1 CPU): same workload", n / two["seconds"], "showers/s"),
        ("local cluster 1 → 2 node speed-up", speedup, "×"),
    ]


if __name__ == "__main__":
    main(sys.argv[1:])
