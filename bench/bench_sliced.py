"""Single-replicate sliced statistics (SKS, SWD) against the scipy loop a user would write, side by side.

    python -m bench --only sliced                 # d = 6480, n = 10k rows per sample, K = 100, 5 repeats
    python -m bench.bench_sliced --quick          # d = 1000, n = 2k, 3 repeats (seconds)

BASELINE (bench code, not caloray): both samples projected in float64 with numpy, in row blocks
(x.astype(float64) @ θ, as `bench_stats` does), then scipy's ks_2samp(method="asymp") or wasserstein_distance
looped over all K projected columns. caloray: the registry's "sks" / "swd" on the same float32 samples and the
same directions. Each repeat times the baseline and caloray back to back, alternating which goes first, with the
same thread count for torch and for numpy's BLAS (threadpoolctl, when installed; one thread by default, as
issue #14 measures). The machine may be shared: rows give the median and min–max over repeats of the per-repeat
speed-up, by wall time and by CPU time (process_time, all threads of this process), and where caloray's time
goes (float32 projection GEMM — oneDNN, next to the plain BLAS matmul — vs the 1-D statistics).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import numpy as np
import torch
from scipy.stats import ks_2samp, wasserstein_distance

from bench.record import Row, print_rows
from caloray.stats import STATISTICS, StatisticContext
from caloray.stats.ecdf import ks_sup_rows, per_column, wasserstein1_rows
from caloray.stats.projections import project

#: numpy row block of the baseline's float64 projection (bounds its float64 copy, as in bench_stats).
BASELINE_ROWS = 1 << 14


def baseline_projection(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """BASELINE: x (n, d) @ θ (d, K) in float64 with numpy, in row blocks → (n, K) float64."""
    return np.concatenate([x[i : i + BASELINE_ROWS].astype(np.float64) @ theta
                           for i in range(0, len(x), BASELINE_ROWS)])


def baseline_sks(px: np.ndarray, py: np.ndarray) -> float:
    """BASELINE: mean over the K columns of sqrt(nm/(n+m))·ks_2samp statistic, one scipy call per column."""
    n, m = len(px), len(py)
    stats = [ks_2samp(px[:, k], py[:, k], method="asymp").statistic for k in range(px.shape[1])]
    return float(np.sqrt(n * m / (n + m)) * np.mean(stats))


def baseline_swd(px: np.ndarray, py: np.ndarray) -> float:
    """BASELINE: mean over the K columns of scipy's wasserstein_distance."""
    return float(np.mean([wasserstein_distance(px[:, k], py[:, k]) for k in range(px.shape[1])]))


def _timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _blas_limit(threads: int):
    """Context pinning numpy's BLAS to `threads` threads (threadpoolctl), or a no-op with a warning."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("  threadpoolctl not installed: numpy's BLAS threads are not pinned", flush=True)
        return nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def _spread(values: Sequence[float]) -> str:
    return f"{np.median(values):.3g} ({min(values):.3g}–{max(values):.3g})"


def bench_sliced(d: int, n: int, n_slices: int, repeat: int, threads: int, seed: int = 0) -> list[Row]:
    """Side-by-side timing of SKS and SWD (one replicate, n rows per sample) against the scipy baseline."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator)  # float32 features, as the feature maps produce
    y = torch.randn(n, d, generator=generator) + 0.01
    context = StatisticContext.for_dimension(d, n_slices, seed)
    theta = context.directions.numpy()
    xn, yn = x.numpy(), y.numpy()
    ours = {name: (lambda fn=STATISTICS[name]: float(fn(x, y, context)[0])) for name in ("sks", "swd")}
    loops = {"sks": baseline_sks, "swd": baseline_swd}
    times: dict[str, list[float]] = {key: [] for key in (
        "sks wall", "sks cpu", "swd wall", "swd cpu", "base proj wall", "base proj cpu", "base sks wall",
        "base sks cpu", "base swd wall", "base swd cpu", "gemm cpu", "matmul cpu", "ks rows cpu", "w1 rows cpu")}
    ours_values: dict[str, float] = {}
    base_values: dict[str, float] = {}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _blas_limit(threads):
            for trial in range(repeat + 1):  # trial 0 warms up (page faults, BLAS buffers) and is not kept
                sample: dict[str, float] = {}
                for side in (("ours", "base") if trial % 2 else ("base", "ours")):
                    if side == "ours":
                        for name, fn in ours.items():
                            value, sample[f"{name} wall"], sample[f"{name} cpu"] = _timed(fn)
                            ours_values[name] = value
                        # where caloray's time goes: the two float32 GEMMs, then the 1-D kernels on their output
                        (px, py), _, sample["gemm cpu"] = _timed(
                            lambda: (project(x, context.directions, keep_float32=True),
                                     project(y, context.directions, keep_float32=True)))
                        _, _, sample["ks rows cpu"] = _timed(lambda px=px, py=py: per_column(px, py, ks_sup_rows))
                        _, _, sample["w1 rows cpu"] = _timed(
                            lambda px=px, py=py: per_column(px, py, wasserstein1_rows))
                        del px, py
                        theta32 = context.directions.float()
                        _, _, sample["matmul cpu"] = _timed(lambda t=theta32: (x @ t, y @ t))  # BLAS, not oneDNN
                    else:
                        (bx, by), sample["base proj wall"], sample["base proj cpu"] = _timed(
                            lambda: (baseline_projection(xn, theta), baseline_projection(yn, theta)))
                        for name, loop in loops.items():
                            value, wall, cpu = _timed(lambda loop=loop, bx=bx, by=by: loop(bx, by))
                            sample[f"base {name} wall"] = sample["base proj wall"] + wall
                            sample[f"base {name} cpu"] = sample["base proj cpu"] + cpu
                            base_values[name] = value
                        del bx, by
                if trial:
                    for key, value in sample.items():
                        times[key].append(value)
                print(f"  trial {trial}{' (warm-up)' if not trial else ''}: "
                      + ", ".join(f"{key} {value:.3f}" for key, value in sample.items()), flush=True)
    finally:
        torch.set_num_threads(previous)

    tag = f"d={d} n={n} K={n_slices} {threads} thread{'s' if threads > 1 else ''}"
    rows: list[Row] = []
    for name in ("sks", "swd"):
        for clock in ("wall", "cpu"):
            ratio = np.array(times[f"base {name} {clock}"]) / np.array(times[f"{name} {clock}"])
            print(f"  {name} speed-up over BASELINE ({clock}): {_spread(ratio)} over {repeat} repeats", flush=True)
            rows += [(f"stats/{name} {tag} speedup_vs_scipy, {clock} time, median of {repeat} (goal ≥ 5×)",
                      float(np.median(ratio)), "×"),
                     (f"stats/{name} {tag} speedup_vs_scipy, {clock} time, min", float(ratio.min()), "×"),
                     (f"stats/{name} {tag} speedup_vs_scipy, {clock} time, max", float(ratio.max()), "×")]
        rows.append((f"stats/{name} {tag} caloray CPU time per replicate, median", float(np.median(
            times[f"{name} cpu"])), "s"))
        rows.append((f"stats/{name} {tag} BASELINE CPU time (f64 numpy projection + scipy loop over K), median",
                     float(np.median(times[f"base {name} cpu"])), "s"))
        rows.append((f"stats/{name} {tag} |caloray − BASELINE| / BASELINE (float32 vs float64 projection)",
                     abs(ours_values[name] - base_values[name]) / abs(base_values[name]), ""))
    gemm = float(np.median(times["gemm cpu"]))
    rows += [
        (f"stats/sliced {tag} caloray float32 projection GEMMs (both samples), CPU median", gemm, "s"),
        (f"stats/sliced {tag} the same two products as plain torch matmul (BLAS), CPU median",
         float(np.median(times["matmul cpu"])), "s"),
        (f"stats/sliced {tag} caloray KS of the K projected columns, CPU median",
         float(np.median(times["ks rows cpu"])), "s"),
        (f"stats/sliced {tag} caloray W1 of the K projected columns, CPU median",
         float(np.median(times["w1 rows cpu"])), "s"),
        (f"stats/sliced {tag} BASELINE float64 numpy projection (both samples), CPU median",
         float(np.median(times["base proj cpu"])), "s"),
    ]
    for name in ("sks", "swd"):
        ceiling = np.median(times[f"base {name} cpu"]) / gemm
        rows.append((f"stats/{name} {tag} ceiling: BASELINE CPU / caloray's GEMMs alone (statistic free)",
                     float(ceiling), "×"))
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the comparison, print figures, return (name, value, unit) rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="d = 1000, n = 2000, 3 repeats")
    parser.add_argument("--dim", type=int, default=None, help="d (default 6480, the ds2 voxels)")
    parser.add_argument("--rows", type=int, default=None, help="rows per sample (default 10000)")
    parser.add_argument("--slices", type=int, default=100, help="K directions")
    parser.add_argument("--repeat", type=int, default=None, help="timed repeats after one warm-up (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch and numpy BLAS threads, both sides")
    args = parser.parse_args(list(argv) if argv is not None else None)
    d = args.dim or (1000 if args.quick else 6480)
    n = args.rows or (2000 if args.quick else 10_000)
    repeat = args.repeat or (3 if args.quick else 5)
    print(f"torch {torch.__version__}; sliced statistics, d={d} n={n} K={args.slices}, {args.threads} thread(s)")
    rows: list[Row] = [("host/load_average_1min at start", os.getloadavg()[0], "runnable processes")]
    rows += bench_sliced(d, n, args.slices, repeat, args.threads)
    rows.append(("host/load_average_1min at end", os.getloadavg()[0], "runnable processes"))
    print_rows(rows)
    return rows


if __name__ == "__main__":
    main()
