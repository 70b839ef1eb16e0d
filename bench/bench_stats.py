"""Benchmark of the two-sample statistics and of Ray null construction (prints figures, no asserts).

    python bench/bench_stats.py            # d = 368, 6480; n = 10k, 100k rows per sample (minutes)
    python bench/bench_stats.py --quick    # same d, n = 1k, 5k rows per sample (a minute or two)

`main(argv)` returns rows (name, value, unit) for BENCHMARKS.md. Timings are wall-clock, best of
`--repeat` runs after one warm-up (a warm-up over 2 s is the figure), on whatever threads torch
uses here (torch.get_num_threads()).
Scipy baselines loop ks_2samp / wasserstein_distance over dimensions or projections; where that loop
would take long it runs on a subset of columns and is extrapolated linearly (the row says so). The single-replicate
SKS/SWD comparison with repeats, spread and CPU time is `bench/bench_sliced.py` (`python -m bench --only sliced`).
"stats/null" rows time what a validation run does: many bootstrap replicates from fixed pools, where caloray
projects (SKS/SWD) and ranks (KS/W1 by counting) the pools once; the baseline redoes the straightforward
per-replicate loop (draw rows, float64 numpy projection, scipy per column).
MMD (O(n² d)) and FGD/FGD∞ (O(n d² + d³)) are only timed where they finish in seconds.
"stats/classifier" rows: the classifier metric's training throughput (training rows × epochs / s, a fixed number
of epochs, no early stop) and the wall time of the whole metric (split, training, calibration, 200 bootstraps)
with the default ClassifierConfig on 10k rows per sample, d = 368 (ds1-photons voxels + 1).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.stats import ks_2samp, wasserstein_distance

from bench.record import Row, print_rows
from caloray.stats import STATISTICS, StatisticContext

FULL_ROWS = (10_000, 100_000)
QUICK_ROWS = (1_000, 5_000)
DIMS = (368, 6480)
#: Scipy loops run on at most this many columns; the rest is extrapolated linearly.
SCIPY_MAX_COLUMNS = 48
#: Skip a statistic when its estimated cost exceeds this many multiply-adds (keeps the run in minutes).
MAX_FLOPS = 5e11


def _best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of `repeat` runs after a warm-up; a warm-up over 2 s counts as the only run."""
    start = time.perf_counter()
    fn()  # warm-up
    best = time.perf_counter() - start
    if best > 2.0 and repeat == 1:
        return best
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _log_standard_normal(y: torch.Tensor) -> torch.Tensor:
    return -0.5 * (y.to(torch.float64) ** 2).sum(-1)


def _log_shifted_normal(y: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((y.to(torch.float64) - 0.1) ** 2).sum(-1)


def _cost(statistic: str, n: int, d: int, n_slices: int) -> float:
    """Rough multiply-add count of one replicate."""
    if statistic == "mmd":
        return 3 * n * n * d
    if statistic in ("fgd", "fgd-inf"):
        # FGD∞: 10 draws at each of 4 subsample sizes (fractions 1/3..5/6, Σ = 7/3) plus the whole sample once
        sizes = 10 * 7 / 3 + 1 if statistic == "fgd-inf" else 1.0
        return sizes * (2 * n * d * d) + (41 if statistic == "fgd-inf" else 1) * 20 * d**3
    if statistic in ("sks", "swd"):
        return 2 * n * d * n_slices
    return 2 * n * d


def _scipy_ks_loop(x: np.ndarray, y: np.ndarray, columns: int) -> None:
    for i in range(columns):
        ks_2samp(x[:, i], y[:, i], method="asymp")


def _scipy_w1_loop(x: np.ndarray, y: np.ndarray, columns: int) -> None:
    for i in range(columns):
        wasserstein_distance(x[:, i], y[:, i])


def _numpy_projection(x: np.ndarray, theta: np.ndarray, rows: int = 1 << 14) -> np.ndarray:
    """x @ theta in float64, in row blocks (bounded memory)."""
    return np.concatenate([x[i : i + rows].astype(np.float64) @ theta for i in range(0, len(x), rows)])


def bench_statistics(d: int, n: int, n_slices: int, repeat: int, seed: int = 0) -> list[Row]:
    """Replicates/s of every statistic for one (d, n), and speed-ups over scipy loops."""
    rows: list[Row] = []
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n, d, generator=generator)  # float32 features, as produced by the feature maps
    y = torch.randn(1, n, d, generator=generator) + 0.01
    context = StatisticContext.for_dimension(d, n_slices, seed, _log_standard_normal, _log_shifted_normal)
    tag = f"d={d} n={n}"
    seconds: dict[str, float] = {}
    for name, fn in STATISTICS.items():
        if _cost(name, n, d, n_slices) > MAX_FLOPS:
            print(f"  {name:8s} {tag}: skipped (≈{_cost(name, n, d, n_slices):.1e} multiply-adds)", flush=True)
            continue
        seconds[name] = _best_time(lambda fn=fn: fn(x, y, context), repeat)
        rows.append((f"stats/{name} {tag} replicates_per_s", 1.0 / seconds[name], "replicates/s"))
        print(f"  {name:8s} {tag}: {seconds[name]:.3f} s/replicate", flush=True)

    # Scipy baselines on the same data. Only the timed columns are copied to float64; the baseline's
    # projection is a float64 numpy matmul in row blocks, like ours (same precision, same BLAS).
    columns = min(d, SCIPY_MAX_COLUMNS)
    xn = x[0, :, :columns].numpy().astype(np.float64)
    yn = y[0, :, :columns].numpy().astype(np.float64)
    ks_loop = _best_time(lambda: _scipy_ks_loop(xn, yn, columns), 1) * d / columns
    rows.append(_speedup("mean-ks", tag, seconds, ks_loop, f"ks_2samp(asymp) × d, timed on {columns} dims"))
    theta = context.directions.numpy()
    projection = _best_time(lambda: (_numpy_projection(x[0].numpy(), theta), _numpy_projection(y[0].numpy(), theta)), 1)
    px, py = _numpy_projection(x[0].numpy(), theta), _numpy_projection(y[0].numpy(), theta)
    slices = min(n_slices, SCIPY_MAX_COLUMNS)
    sks_loop = projection + _best_time(lambda: _scipy_ks_loop(px, py, slices), 1) * n_slices / slices
    swd_loop = projection + _best_time(lambda: _scipy_w1_loop(px, py, slices), 1) * n_slices / slices
    note = f"f64 numpy projection + loop × K={n_slices}, timed on {slices}"
    rows.append(_speedup("sks", tag, seconds, sks_loop, f"ks_2samp(asymp): {note}"))
    rows.append(_speedup("swd", tag, seconds, swd_loop, f"wasserstein_distance: {note}"))
    return rows


def _speedup(name: str, tag: str, seconds: dict[str, float], baseline: float, how: str) -> Row:
    print(f"  scipy {name:8s} {tag}: {baseline:.3f} s ({how})", flush=True)
    if name not in seconds:
        return (f"stats/{name} {tag} scipy_seconds [{how}]", baseline, "s")
    return (f"stats/{name} {tag} speedup_vs_scipy [{how}]", baseline / seconds[name], "x")


def _scipy_null_loop(reference: np.ndarray, candidate: np.ndarray, statistic: str, theta: np.ndarray,
                     rng: np.random.Generator) -> float:
    """Seconds of one straightforward replicate: draw the rows, (project them in float64,) loop the scipy
    1-D test over the columns; timed on at most SCIPY_MAX_COLUMNS columns and extrapolated."""
    n = reference.shape[0]
    start = time.perf_counter()
    x = reference[rng.integers(0, n, n)].astype(np.float64)
    y = candidate[rng.integers(0, len(candidate), n)].astype(np.float64)
    if statistic in ("sks", "swd"):
        x, y = _numpy_projection(x, theta), _numpy_projection(y, theta)
    prepare = time.perf_counter() - start
    columns = min(x.shape[1], SCIPY_MAX_COLUMNS)
    start = time.perf_counter()
    (_scipy_w1_loop if statistic == "swd" else _scipy_ks_loop)(x, y, columns)
    return prepare + (time.perf_counter() - start) * x.shape[1] / columns


def bench_null_construction(d: int, n: int, n_slices: int, seed: int = 0) -> list[Row]:
    """Null + alternative construction (bootstrap, batch = n rows from n-row pools) of the KS/W1-type tests:
    caloray's `null_and_alternative` (pools projected/ranked once, replicates batched) against the
    straightforward loop (per replicate: draw rows, project, scipy per column)."""
    from caloray.validate import ExperimentDesign, null_and_alternative

    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, d), dtype=np.float32)
    candidate = rng.standard_normal((n, d), dtype=np.float32) + np.float32(0.01)
    n_iter = 20 if n * d <= 10**8 else 16  # 16: one full chunk of a lazily sorted pool (RANKED_CHUNK)
    design = ExperimentDesign(batch_size=n, n_iter=n_iter, n_slices=n_slices, seed=seed)
    theta = design.context(d).directions.numpy()
    tag = f"d={d} n={n}"
    rows: list[Row] = []
    for statistic in ("mean-ks", "sks", "swd"):
        start = time.perf_counter()
        null_and_alternative(reference, candidate, statistic, design)
        ours = (time.perf_counter() - start) / (2 * n_iter)  # includes the one-time projection/ranking
        loop = _scipy_null_loop(reference, candidate, statistic, theta, rng)
        print(f"  null {statistic:8s} {tag}: {ours:.3f} s/replicate over {2 * n_iter} (scipy loop {loop:.3f} s)",
              flush=True)
        how = f"bootstrap batch=n, {2 * n_iter} replicates incl. one-time projection/ranking"
        rows.append((f"stats/null {statistic} {tag} replicates_per_s [{how}]", 1.0 / ours, "replicates/s"))
        rows.append((f"stats/null {statistic} {tag} speedup_vs_scipy_loop [{how}]", loop / ours, "x"))
    return rows


def bench_ray(d: int, n_rows: int, batch_size: int, n_iter: int, repeat: int) -> list[Row]:
    """Wall time of Ray null+alternative construction with 1 and 2 concurrent workers."""
    import ray

    from caloray.validate import ExperimentDesign, null_and_alternative
    from caloray.validate.pipeline_ray import null_and_alternative_ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        rng = np.random.default_rng(0)
        reference = rng.normal(size=(n_rows, d)).astype(np.float32)
        candidate = rng.normal(0.01, 1.0, size=(n_rows, d)).astype(np.float32)
        design = ExperimentDesign(batch_size=batch_size, n_iter=n_iter, n_slices=100, seed=0, chunk_size=2)
        tag = f"mean-ks d={d} batch={batch_size} n_iter={n_iter}"
        times = {}
        for workers in (1, 2):
            times[workers] = _best_time(
                lambda w=workers: null_and_alternative_ray(reference, candidate, "mean-ks", design, concurrency=w),
                repeat,
            )
            print(f"  ray {workers} worker(s) {tag}: {times[workers]:.2f} s", flush=True)
        local = _best_time(lambda: null_and_alternative(reference, candidate, "mean-ks", design), repeat)
        print(f"  local ({torch.get_num_threads()} torch threads) {tag}: {local:.2f} s", flush=True)
        return [
            (f"ray/null+alt {tag} 1 worker", 2 * n_iter / times[1], "replicates/s"),
            (f"ray/null+alt {tag} 2 workers", 2 * n_iter / times[2], "replicates/s"),
            (f"ray/null+alt {tag} speedup 1→2 workers", times[1] / times[2], "x"),
            (f"local/null+alt {tag} ({torch.get_num_threads()} threads)", 2 * n_iter / local, "replicates/s"),
        ]
    finally:
        if started_here:
            ray.shutdown()


def bench_classifier(d: int, n: int, epochs: int, seed: int = 0) -> list[Row]:
    """Classifier metric on n rows per sample of N(0, 1) vs N(0.05, 1) in d dimensions, default network."""
    from dataclasses import replace

    from caloray.stats.classifier import ClassifierConfig, classifier_metric, train_classifier

    rng = np.random.default_rng(seed)
    reference, candidate = rng.normal(size=(n, d)), rng.normal(0.05, 1.0, size=(n, d))
    config = replace(ClassifierConfig(), epochs=epochs, patience=epochs)  # a fixed amount of work
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        n_train, n_val = int(0.6 * n), int(0.2 * n)
        x = torch.as_tensor(np.concatenate([reference[:n_train], candidate[:n_train]]), dtype=torch.float32)
        y = torch.cat([torch.zeros(n_train), torch.ones(n_train)])
        xv = torch.as_tensor(np.concatenate([reference[-n_val:], candidate[-n_val:]]), dtype=torch.float32)
        yv = torch.cat([torch.zeros(n_val), torch.ones(n_val)])
        torch.manual_seed(seed)
        start = time.perf_counter()
        train_classifier(x, y, xv, yv, config, torch.Generator().manual_seed(seed))
        train_seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    result = classifier_metric(reference, candidate, config)
    metric_seconds = time.perf_counter() - start
    tag = f"d={d} n={n // 1000}k hidden={'x'.join(map(str, config.hidden))} {config.threads} thread"
    print(f"classifier {tag}: {len(x) * epochs / train_seconds:.0f} training rows/s, metric {metric_seconds:.1f} s "
          f"(AUC {result.auc:.3f} ± {result.auc_err:.3f})")
    return [(f"stats/classifier {tag} training_rows_per_s", len(x) * epochs / train_seconds, "rows/s"),
            (f"stats/classifier {tag} metric_seconds ({epochs} epochs)", metric_seconds, "s")]


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the benchmark, print figures, return (name, value, unit) rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n = 1k and 5k rows instead of 10k and 100k")
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMS))
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="rows per sample (overrides --quick)")
    parser.add_argument("--slices", type=int, default=100, help="K directions for SKS/SWD")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per figure (best is kept)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray worker scaling figure")
    parser.add_argument("--classifier-epochs", type=int, default=5, help="epochs of the classifier figure (0: skip)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    rows_per_sample = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32 input, float64 math")
    # Other processes on the host distort every figure: record the load next to them.
    results: list[Row] = [("host/load_average_1min at start", os.getloadavg()[0], "runnable processes")]
    for d in args.dims:
        for n in rows_per_sample:
            results += bench_statistics(d, n, args.slices, args.repeat)
            results += bench_null_construction(d, n, args.slices)
    if args.classifier_epochs > 0:
        results += bench_classifier(369, 10_000, args.classifier_epochs)
    if not args.no_ray:
        batch = 1000 if args.quick else 5000
        results += bench_ray(368, 4 * batch, batch, 16 if args.quick else 32, args.repeat)
    results.append(("host/load_average_1min at end", os.getloadavg()[0], "runnable processes"))
    print_rows(results)
    return results


if __name__ == "__main__":
    main()
