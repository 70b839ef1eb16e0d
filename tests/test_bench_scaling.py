"""bench.bench_scaling: the suite runs at tiny sizes, and its CPU-obtained figures measure known CPU work."""

from __future__ import annotations

import math
import time

from bench import bench_scaling


def _burn(seconds: float) -> float:
    """Spin for `seconds` of this process's CPU time; returns the CPU time used."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return time.process_time() - start


def test_cpu_obtained_counts_ray_worker_and_plain_process_cpu(ray_local):
    class Burner:  # defined here so Ray ships it by value
        def burn(self, seconds: float) -> float:
            start = time.process_time()
            while time.process_time() - start < seconds:
                pass
            return time.process_time() - start

    # Two actors, started and warmed before the snapshot: plain tasks may land on a worker Ray starts inside the
    # timed window (CI saw 1.64 s for 0.8 s of work, the rest a fresh worker's imports), an actor's process is fixed.
    burner = ray_local.remote(num_cpus=0)(Burner)
    actors = [burner.remote() for _ in range(2)]
    ray_local.get([a.burn.remote(0.05) for a in actors])
    try:
        wall, cpu = bench_scaling._timed_ray(lambda: ray_local.get([a.burn.remote(0.4) for a in actors]))
    finally:
        for actor in actors:
            ray_local.kill(actor)
    # the two calls' 0.8 s, plus the idle workers' own bookkeeping (heartbeats, GC) over the window
    assert 0.7 <= cpu <= 1.0 + 0.3 * wall
    wall, cpu = bench_scaling._timed_plain(_burn, [0.3, 0.3, 0.3], 2)
    assert 0.85 <= cpu <= 1.2 and wall >= 0.45  # three 0.3 s units on two processes: at least two rounds


def test_scaling_suite_runs_at_tiny_sizes(ray_local):
    rows = bench_scaling.main(["--tiny", "--pipelines", "simulate,validate"])
    by_name = {name: value for name, value, _ in rows}
    speedups = [v for n, v in by_name.items() if "speed-up" in n]
    assert len(speedups) == 4 and all(math.isfinite(v) and v > 0 for v in speedups)
    # plain processes: each busy worker obtains at most one core (plus rounding of the tick counts)
    plain_cores = [v for n, v in by_name.items() if "plain processes" in n and "CPU obtained" in n]
    assert len(plain_cores) == 4 and all(0 < v <= 2.2 for v in plain_cores)
    assert ray_local.is_initialized()  # the suite leaves a Ray it did not start running
