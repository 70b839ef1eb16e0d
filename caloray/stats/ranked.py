"""KS and Wasserstein-1 of many resampled replicates from per-column dense ranks, by counting instead of sorting.

Null and alternative replicates draw their rows from one fixed pool. Ranking every column of the pool once
(ties share a rank) turns each replicate's per-column KS or W1 into two bincounts and a cumulative sum over the
pool's distinct values, O(n + m + V) per column instead of a sort, O((n + m) log(n + m)). KS depends only on
the order of the values, so it is exact on ranks; W1 weights the count difference by the gaps between
consecutive distinct values (∫|F_n − G_m| du as a sum over those gaps), also exact.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: reduce(count differences (B, V) int64, column of each row (B,)) → (B,) float64
Reduce = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: Bins (replicates × columns × distinct values) per bincount chunk: bounds the int64 count arrays.
COUNT_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class RankedPool:
    """Dense per-column ranks of the pooled rows [reference; candidate] and the distinct values they index.

    ranks: (N + M, d) int32/int64, column I's ranks in [0, V_I); gaps: (d, V) float64, gaps[I, v] = value of
    rank v + 1 − value of rank v (0 past a column's last distinct value; (d, 0) when only KS is needed);
    n_reference: N; n_bins: V, the number of count bins per column.
    """

    ranks: np.ndarray
    gaps: np.ndarray
    n_reference: int
    n_bins: int


#: Elements per column chunk while ranking (bounds the int64 argsort arrays).
RANK_ELEMENTS = 1 << 24


def rank_pool(pooled: np.ndarray, with_gaps: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Dense ranks of every column of `pooled` (rows, d) and the gaps between consecutive distinct values.

    Equal values (−0.0 and +0.0 included) share a rank. Returns (ranks (rows, d) int32, gaps (d, V) float64);
    without `with_gaps` the gaps array is (d, 0) and V is only the largest rank + 1 (what KS needs).
    """
    pooled = np.asarray(pooled)
    rows, d = pooled.shape
    if rows >= 2**31:
        raise ValueError(f"cannot rank {rows} rows in int32")
    ranks = np.empty((rows, d), dtype=np.int32)
    step = max(1, RANK_ELEMENTS // max(rows, 1))
    sorted_columns = []
    n_bins = 1
    for start in range(0, d, step):
        block = pooled[:, start : start + step]
        order = np.argsort(block, axis=0, kind="stable")
        ordered = np.take_along_axis(block, order, axis=0).astype(np.float64) + 0.0
        new_value = np.zeros(ordered.shape, dtype=bool)
        np.not_equal(ordered[1:], ordered[:-1], out=new_value[1:])
        sorted_ranks = np.cumsum(new_value, axis=0, dtype=np.int32)
        np.put_along_axis(ranks[:, start : start + step], order, sorted_ranks, axis=0)
        n_bins = max(n_bins, int(sorted_ranks[-1].max()) + 1 if rows else 1)
        if with_gaps:
            sorted_columns.append((ordered, sorted_ranks))
    if not with_gaps:
        return ranks, np.zeros((d, 0))
    gaps = np.zeros((d, n_bins), dtype=np.float64)
    start = 0
    for ordered, sorted_ranks in sorted_columns:
        width = ordered.shape[1]
        values = np.repeat(ordered[-1:].T, n_bins, axis=1)  # pad each column with its maximum: zero gaps
        values[np.broadcast_to(np.arange(width), ordered.shape), sorted_ranks] = ordered
        gaps[start : start + width, :-1] = np.diff(values, axis=1)
        start += width
    return ranks, gaps


def ranked_pool(reference: Tensor, candidate: Tensor, with_gaps: bool = True) -> RankedPool:
    """Rank the pooled reference (N, d) and candidate (M, d) rows column by column (on the CPU)."""
    pooled = np.concatenate([reference.detach().cpu().numpy(), candidate.detach().cpu().numpy()])
    ranks, gaps = rank_pool(pooled, with_gaps)
    n_bins = gaps.shape[1] if with_gaps else int(ranks.max(initial=0)) + 1
    return RankedPool(ranks, gaps, reference.shape[0], n_bins)


def _count_differences(x_ranks: np.ndarray, y_ranks: np.ndarray, n_bins: int) -> np.ndarray:
    """Running n·m·(F_n − G_m) over the distinct values: x (B, n), y (B, m) ranks → (B, V) int64."""
    rows, n = x_ranks.shape
    m = y_ranks.shape[1]
    offsets = (np.arange(rows, dtype=np.int64) * n_bins)[:, None]
    size = rows * n_bins
    counts = np.bincount((x_ranks + offsets).ravel(), minlength=size) * m
    counts -= np.bincount((y_ranks + offsets).ravel(), minlength=size) * n
    return np.cumsum(counts.reshape(rows, n_bins), axis=1)


def _per_column(x: np.ndarray, y: np.ndarray, n_bins: int, reduce: Reduce) -> Tensor:
    """Apply `reduce(differences (B, V), columns (B,))` to every column of x (R, n, d), y (R, m, d) → (R, d)."""
    replicates, n, d = x.shape
    m = y.shape[1]
    step = max(1, min(d, COUNT_ELEMENTS // max(replicates * n_bins, 1)))
    out = np.empty((replicates, d), dtype=np.float64)

    def run(start: int) -> None:
        stop = min(start + step, d)
        a = x[:, :, start:stop].transpose(0, 2, 1).reshape(-1, n).astype(np.int64)
        b = y[:, :, start:stop].transpose(0, 2, 1).reshape(-1, m).astype(np.int64)
        columns = np.tile(np.arange(start, stop), replicates)
        out[:, start:stop] = reduce(_count_differences(a, b, n_bins), columns).reshape(replicates, stop - start)

    starts = range(0, d, step)
    threads = min(torch.get_num_threads(), len(starts))
    if threads > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    return torch.from_numpy(out)


def ks_sup_ranked(x_ranks: np.ndarray, y_ranks: np.ndarray, pool: RankedPool) -> Tensor:
    """sup_u |F_n − G_m| of every column: ranks x (R, n, d), y (R, m, d) from `pool` → (R, d) float64."""
    n, m = x_ranks.shape[1], y_ranks.shape[1]
    return _per_column(x_ranks, y_ranks, pool.n_bins,
                       lambda diff, columns: np.abs(diff).max(axis=1) / (n * m))


def wasserstein1_ranked(x_ranks: np.ndarray, y_ranks: np.ndarray, pool: RankedPool) -> Tensor:
    """∫|F_n − G_m| du of every column: ranks x (R, n, d), y (R, m, d) from `pool` → (R, d) float64."""
    n, m = x_ranks.shape[1], y_ranks.shape[1]
    gaps = pool.gaps
    return _per_column(x_ranks, y_ranks, pool.n_bins,
                       lambda diff, columns: (np.abs(diff) * gaps[columns]).sum(axis=1) / (n * m))
