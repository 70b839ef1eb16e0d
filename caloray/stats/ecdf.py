"""Row-wise 1-D two-sample distances from one merged sort: KS sup-distance and Wasserstein-1.

Both take `a` (B, n) and `b` (B, m): B independent 1-D problems, one per row. The pooled values of
each row are sorted once; the running count difference n·m·(F_n − G_m) is an exact int64 cumulative
sum, so ties (e.g. the many exact zeros of calorimeter voxels) are handled exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from caloray.stats._shapes import WORK_ELEMENTS, column_chunk

RowDistance = Callable[[Tensor, Tensor], Tensor]

#: Pooled elements per column chunk on CPU: small enough to stay in cache while sorting.
CPU_SORT_ELEMENTS = 1 << 20


def _labelled_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order-preserving uint64 keys of the pooled rows [a | b] with the lowest bit cleared for the
    sample label, and a per-row flag telling whether the keys still separate all distinct values.

    Adding +0.0 first makes −0.0 and +0.0 tie, as they compare equal. Float inputs of ≤ 32 bits have
    room to spare (always exact); float64 keys lose their lowest bit, which only matters for values
    one ulp apart: such rows are flagged (and recomputed with an argsort by the caller).
    """
    if all(v.dtype.kind == "f" and v.dtype.itemsize <= 4 for v in (a, b)):
        bits = (np.concatenate([a, b], axis=-1).astype(np.float32) + np.float32(0.0)).view(np.uint32)
        flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
        return (bits ^ flip).astype(np.uint64) << np.uint64(1), np.ones(bits.shape[:-1], dtype=bool)
    bits = (np.concatenate([a, b], axis=-1).astype(np.float64) + 0.0).view(np.uint64)
    full = bits ^ ((bits >> np.uint64(63)) * np.uint64(0x7FFFFFFFFFFFFFFF) | np.uint64(0x8000000000000000))
    ordered = np.sort(full, axis=-1)
    lost = (ordered[..., 1:] != ordered[..., :-1]) & ((ordered[..., 1:] ^ ordered[..., :-1]) == np.uint64(1))
    return full & ~np.uint64(1), ~lost.any(axis=-1)


def _tie_keys_and_steps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled rows in sorted order as (tie keys, steps): equal keys ⇔ equal values; the step is +m for
    an x row and −n for a y row, so its running sum is n·m·(F_n − G_m) (numpy, CPU).

    The sample label rides in the lowest bit of an order-preserving uint64 key, so one value sort
    (much faster than an argsort) gives both order and labels; rows where that key would merge two
    distinct float64 values one ulp apart fall back to an exact argsort.
    """
    n, m = a.shape[-1], b.shape[-1]
    keys, exact = _labelled_keys(a, b)
    keys[..., n:] |= np.uint64(1)
    keys.sort(axis=-1)
    is_x = (keys & np.uint64(1)) == 0
    keys >>= np.uint64(1)
    steps = np.where(is_x, np.int64(m), np.int64(-n))
    if not exact.all():
        rows = np.flatnonzero(~exact)
        pooled = np.concatenate([a[rows], b[rows]], axis=-1).astype(np.float64) + 0.0
        order = np.argsort(pooled, axis=-1)
        keys[rows] = np.take_along_axis(pooled, order, axis=-1).view(np.uint64)
        steps[rows] = np.where(order < n, np.int64(m), np.int64(-n))
    return keys, steps


def _ks_sup_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max over run ends of |n·m·(F_n − G_m)|, int64 (B,)."""
    keys, steps = _tie_keys_and_steps(a, b)
    counts = np.cumsum(steps, axis=-1)
    # Inside a run of tied values the partial sums are not eCDF values: only look at run ends.
    # (The last position always has count n·m − m·n = 0.)
    run_end = keys[..., 1:] != keys[..., :-1]
    return np.where(run_end, np.abs(counts[..., :-1]), 0).max(axis=-1, initial=0)


def _ks_sup_torch(a: Tensor, b: Tensor) -> Tensor:
    """Same as `_ks_sup_numpy` with torch ops (GPU and other devices)."""
    n, m = a.shape[-1], b.shape[-1]
    values, order = torch.sort(torch.cat([a, b.to(a.dtype)], dim=-1) + 0.0, dim=-1)
    counts = torch.cumsum(torch.where(order < n, m, -n), dim=-1)
    run_end = values[..., 1:] != values[..., :-1]
    return torch.where(run_end, counts[..., :-1].abs(), 0).amax(dim=-1)  # n + m >= 2: never empty


def _cpu_numpy(t: Tensor) -> np.ndarray:
    return (t.float() if t.dtype == torch.bfloat16 else t).detach().numpy()


def _sort_rows(a: Tensor) -> Tensor:
    """Each row sorted ascending (numpy's SIMD sort on CPU, much faster than torch's CPU sort)."""
    if a.device.type == "cpu":
        return torch.from_numpy(np.sort(_cpu_numpy(a), axis=-1))
    return torch.sort(a, dim=-1).values


def ks_sup_rows(a: Tensor, b: Tensor) -> Tensor:
    """sup_u |F_n(u) − G_m(u)| per row, shape (B,) float64 (no sqrt(nm/(n+m)) prefactor).

    Exact: computed from integer counts, ties included. Inputs must be free of NaN.
    """
    n, m = a.shape[-1], b.shape[-1]
    if a.device.type == "cpu":
        sup = torch.from_numpy(_ks_sup_numpy(_cpu_numpy(a), _cpu_numpy(b)))
    else:
        sup = _ks_sup_torch(a, b)
    return sup.to(torch.float64) / (n * m)


def wasserstein1_rows(a: Tensor, b: Tensor) -> Tensor:
    """1-D Wasserstein-1 distance ∫|F_n − G_m| du per row, shape (B,) float64."""
    n, m = a.shape[-1], b.shape[-1]
    a, b = a.to(torch.float64), b.to(torch.float64)
    if n == m:  # equal sizes: mean |sorted difference|
        return (_sort_rows(a) - _sort_rows(b)).abs().mean(dim=-1)
    # ∫|F_n − G_m| = Σ_k |F_n − G_m|(z_k) (z_{k+1} − z_k) over the sorted pooled values z.
    pooled = torch.cat([a, b], dim=-1)
    order = (
        torch.argsort(pooled, dim=-1)
        if a.device.type != "cpu"
        else torch.from_numpy(np.argsort(pooled.numpy(), axis=-1))
    )
    values = torch.gather(pooled, -1, order)
    counts = torch.cumsum(torch.where(order < n, m, -n), dim=-1)
    widths = values[..., 1:] - values[..., :-1]
    return (counts[..., :-1].abs().to(torch.float64) * widths).sum(dim=-1) / (n * m)


def per_column(x: Tensor, y: Tensor, row_fn: RowDistance, budget: int | None = None) -> Tensor:
    """Apply a row-wise 1-D distance to every column of (R, n, d) and (R, m, d); returns (R, d) float64.

    Columns go in chunks whose pooled working array holds at most `budget` elements (default: a
    cache-sized `CPU_SORT_ELEMENTS` on CPU, where chunks also run on `torch.get_num_threads()` threads,
    since numpy's sort is single-threaded; `WORK_ELEMENTS` elsewhere). Within a chunk all replicates
    and columns go through one batched sort.
    """
    replicates, n, d = x.shape
    m = y.shape[1]
    on_cpu = x.device.type == "cpu"
    if budget is None:
        budget = CPU_SORT_ELEMENTS if on_cpu else WORK_ELEMENTS
    step = column_chunk(replicates * (n + m), d, budget)
    out = torch.empty(replicates, d, dtype=torch.float64, device=x.device)

    def run(start: int) -> None:
        stop = min(start + step, d)
        a = x[:, :, start:stop].transpose(1, 2).reshape(-1, n)
        b = y[:, :, start:stop].transpose(1, 2).reshape(-1, m)
        out[:, start:stop] = row_fn(a, b).reshape(replicates, stop - start)

    starts = range(0, d, step)
    threads = min(torch.get_num_threads(), len(starts)) if on_cpu else 1
    if threads > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    return out
