"""KS and Wasserstein-1 of many resampled replicates from per-column dense ranks, by counting instead of sorting.

Null and alternative replicates draw their rows from one fixed pool. Ranking every column of the pool once
(ties share a rank) turns each replicate's per-column KS or W1 into two bincounts and a cumulative sum over the
pool's distinct values, O(n + m + V) per column instead of a sort, O((n + m) log(n + m)). KS depends only on
the order of the values, so it is exact on ranks; W1 weights the count difference by the gaps between
consecutive distinct values (∫|F_n − G_m| du as a sum over those gaps), also exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: reduce(running counts (c, R, V), first column of the chunk) → (c, R) float64
Reduce = Callable[[Tensor, int], Tensor]

#: Bins (replicates × columns × distinct values) per counting chunk: bounds the count arrays.
COUNT_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class RankedPool:
    """Dense per-column ranks of the pooled rows [reference; candidate] and the distinct values they index.

    columns: (d, N + M) int64, column I's ranks in [0, V_I) (column-major, so a replicate's rows of one column
    are one gather); gaps: (d, V) float64, gaps[I, v] = value of rank v + 1 − value of rank v (0 past a
    column's last distinct value; (d, 0) when only KS is needed); n_reference: N; n_bins: V, count bins.
    """

    columns: Tensor
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
        block = np.ascontiguousarray(pooled[:, start : start + step].T)  # (c, rows): sort along contiguous rows
        order = np.argsort(block, axis=1)  # ties share a rank, so the order among equal values is irrelevant
        ordered = np.take_along_axis(block, order, axis=1).astype(np.float64) + 0.0
        new_value = np.zeros(ordered.shape, dtype=bool)
        np.not_equal(ordered[:, 1:], ordered[:, :-1], out=new_value[:, 1:])
        sorted_ranks = np.cumsum(new_value, axis=1, dtype=np.int32)
        block_ranks = np.empty_like(sorted_ranks)
        np.put_along_axis(block_ranks, order, sorted_ranks, axis=1)
        ranks[:, start : start + step] = block_ranks.T
        n_bins = max(n_bins, int(sorted_ranks[:, -1].max()) + 1 if rows else 1)
        if with_gaps:
            sorted_columns.append((ordered, sorted_ranks))
    if not with_gaps:
        return ranks, np.zeros((d, 0))
    gaps = np.zeros((d, n_bins), dtype=np.float64)
    start = 0
    for ordered, sorted_ranks in sorted_columns:
        width = ordered.shape[0]
        values = np.repeat(ordered[:, -1:], n_bins, axis=1)  # pad each column with its maximum: zero gaps
        np.put_along_axis(values, sorted_ranks, ordered, axis=1)
        gaps[start : start + width, :-1] = np.diff(values, axis=1)
        start += width
    return ranks, gaps


def ranked_pool(reference: Tensor, candidate: Tensor, with_gaps: bool = True) -> RankedPool:
    """Rank the pooled reference (N, d) and candidate (M, d) rows column by column (on the CPU)."""
    pooled = np.concatenate([reference.detach().cpu().numpy(), candidate.detach().cpu().numpy()])
    ranks, gaps = rank_pool(pooled, with_gaps)
    n_bins = gaps.shape[1] if with_gaps else int(ranks.max(initial=0)) + 1
    columns = torch.from_numpy(np.ascontiguousarray(ranks.T, dtype=np.int64))
    return RankedPool(columns, gaps, reference.shape[0], n_bins)


def _running_counts(x_ranks: Tensor, y_ranks: Tensor, n_bins: int) -> Tensor:
    """Running (n·m / g)·(F_n − G_m) over the distinct values, g = gcd(n, m): x (B, n), y (B, m) int64 ranks →
    (B, V). Two scatter-adds and a cumulative sum in torch (multi-threaded, GIL released); int32 while the
    bound n·m / g fits (always for n = m, the usual bootstrap design)."""
    rows, n = x_ranks.shape
    m = y_ranks.shape[1]
    g = math.gcd(n, m)
    dtype = torch.int32 if n * m // g < 2**31 else torch.int64
    counts = torch.zeros(rows, n_bins, dtype=dtype)
    counts.scatter_add_(1, x_ranks, torch.full((1, 1), m // g, dtype=dtype).expand(rows, n))
    counts.scatter_add_(1, y_ranks, torch.full((1, 1), -(n // g), dtype=dtype).expand(rows, m))
    return torch.cumsum(counts, 1, dtype=dtype)


def _per_column(pool: RankedPool, x_rows: np.ndarray, y_rows: np.ndarray, reduce: Reduce) -> Tensor:
    """Apply `reduce(running counts (c, R, V), first column)` → (c, R) to column chunks of the replicates whose
    rows in [reference; candidate] are x_rows (R, n) and y_rows (R, m); returns (R, d) float64."""
    x_index = torch.as_tensor(np.asarray(x_rows), dtype=torch.long)
    y_index = torch.as_tensor(np.asarray(y_rows), dtype=torch.long)
    (replicates, n), m = x_index.shape, y_index.shape[1]
    d, n_bins = pool.columns.shape[0], pool.n_bins
    step = max(1, min(d, COUNT_ELEMENTS // max(replicates * n_bins, 1)))
    out = torch.empty(replicates, d, dtype=torch.float64)
    for start in range(0, d, step):
        block = pool.columns[start : start + step]
        a = block[:, x_index.reshape(-1)].reshape(-1, n)
        b = block[:, y_index.reshape(-1)].reshape(-1, m)
        counts = _running_counts(a, b, n_bins).reshape(block.shape[0], replicates, n_bins)
        out[:, start : start + block.shape[0]] = reduce(counts, start).T
    return out


def ks_sup_ranked(pool: RankedPool, x_rows: np.ndarray, y_rows: np.ndarray) -> Tensor:
    """sup_u |F_n − G_m| of every column for replicates with pool rows x_rows (R, n), y_rows (R, m) → (R, d)."""
    n, m = np.shape(x_rows)[1], np.shape(y_rows)[1]
    scale = n * m // math.gcd(n, m)
    return _per_column(pool, x_rows, y_rows,
                       lambda counts, start: counts.abs_().amax(dim=-1).to(torch.float64) / scale)


def wasserstein1_ranked(pool: RankedPool, x_rows: np.ndarray, y_rows: np.ndarray) -> Tensor:
    """∫|F_n − G_m| du of every column for replicates with pool rows x_rows (R, n), y_rows (R, m) → (R, d)."""
    n, m = np.shape(x_rows)[1], np.shape(y_rows)[1]
    scale = n * m // math.gcd(n, m)
    gaps = torch.from_numpy(pool.gaps)

    def reduce(counts: Tensor, start: int) -> Tensor:
        widths = gaps[start : start + counts.shape[0]].unsqueeze(1)
        return (counts.abs_().to(torch.float64) * widths).sum(dim=-1) / scale

    return _per_column(pool, x_rows, y_rows, reduce)
