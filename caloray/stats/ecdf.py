"""Row-wise 1-D two-sample distances from one merged sort: KS sup-distance and Wasserstein-1.

Both take `a` (B, n) and `b` (B, m): B independent 1-D problems, one per row. The pooled values of
each row are sorted once; the running count difference n·m·(F_n − G_m) is an exact int64 cumulative
sum, so ties (e.g. the many exact zeros of calorimeter voxels) are handled exactly.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from caloray.stats._shapes import WORK_ELEMENTS, column_chunk

RowDistance = Callable[[Tensor, Tensor], Tensor]

#: The 32-bit words of a uint64 holding its low and high halves (numpy views follow the machine's byte order).
_LOW, _HIGH = (0, 1) if sys.byteorder == "little" else (1, 0)

#: Pooled elements per column chunk on CPU: small enough to stay in cache while sorting.
CPU_SORT_ELEMENTS = 1 << 20


def _labelled_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, bool]:
    """Order-preserving uint64 keys of the pooled rows [a | b] with the lowest bit cleared for the
    sample label, and whether they are float64 keys (else float32 keys in the high 32-bit word).

    Adding +0.0 first makes −0.0 and +0.0 tie, as they compare equal. Float inputs of ≤ 32 bits have
    room to spare (always exact); float64 keys lose their lowest bit, which only matters for values
    one ulp apart (checked by `_merged_rows` where the sorted keys show ties).
    """
    if all(v.dtype.kind == "f" and v.dtype.itemsize <= 4 for v in (a, b)):
        n = a.shape[-1]
        keys = np.zeros((*a.shape[:-1], n + b.shape[-1]), dtype=np.uint64)
        words = keys.view(np.uint32)[..., _HIGH::2]
        for part, v in ((words[..., :n], a), (words[..., n:], b)):
            bits = (v.astype(np.float32, copy=False) + np.float32(0.0)).view(np.uint32)
            part[...] = bits ^ ((bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000))
        return keys, False
    return _float64_keys(a, b) & ~np.uint64(1), True


def _float64_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order-preserving uint64 keys of the float64 pooled rows [a | b] (all 64 bits; −0.0 → +0.0)."""
    pooled = np.empty((*a.shape[:-1], a.shape[-1] + b.shape[-1]))  # C order (concatenate follows F-order inputs)
    np.add(a, 0.0, out=pooled[..., : a.shape[-1]])
    np.add(b, 0.0, out=pooled[..., a.shape[-1] :])
    bits = pooled.view(np.uint64)
    return bits ^ ((bits >> np.uint64(63)) * np.uint64(0x7FFFFFFFFFFFFFFF) | np.uint64(0x8000000000000000))


def _merged_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of float64 [a | b] holding two distinct values one ulp apart in their lowest key bit, bool (B,)."""
    ordered = np.sort(_float64_keys(a, b), axis=-1)
    neighbours = ordered[..., 1:] ^ ordered[..., :-1]
    return (neighbours == np.uint64(1)).any(axis=-1)


def _sup_of_sorted_keys(keys: np.ndarray, n: int, m: int, wide: bool) -> tuple[np.ndarray, np.ndarray]:
    """max over run ends of |n·m·(F_n − G_m)| from sorted labelled keys (B, n + m) (label 1 = y row), int64 (B,),
    and which rows hold tied values, bool (B,). `wide`: float64 keys (value in bits 1–63, consumed), else
    float32 keys (value in the high word).

    With g = gcd(n, m), an x row steps the running sum by m/g and a y row by −n/g, so the sum is
    (n·m/g)·(F_n − G_m): bounded by n·m/g, int32 while that fits (always for n = m, where the steps are ±1),
    which halves the memory traffic of the passes that follow the sort.
    """
    g = math.gcd(n, m)
    up, down = m // g, n // g
    dtype = np.int32 if n * m // g < 2**31 - 1 else np.int64
    low = keys.view(np.uint32)[..., _LOW::2]  # float32 keys: the label is all the low word holds
    counts = (low & np.uint32(1) if wide else low).astype(dtype)
    counts *= -(up + down)
    counts += up
    np.cumsum(counts, axis=-1, dtype=dtype, out=counts)
    if wide:
        keys >>= np.uint64(1)
        values = keys
    else:
        values = keys.view(np.uint32)[..., _HIGH::2]
    tied = values[..., 1:] == values[..., :-1]
    tied_rows = tied.any(axis=-1)
    if tied_rows.any():  # inside a run of tied values the partial sums are not eCDF values: only run ends count
        counts[..., :-1][tied] = 0
    # The last position always holds (n·m/g)·(1 − 1) = 0, so max and −min cover |counts| and are never empty.
    return np.maximum(counts.max(axis=-1), -counts.min(axis=-1)).astype(np.int64) * g, tied_rows


def _ks_sup_argsort(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Same as `_ks_sup_numpy` through an argsort of the float64 pooled values (exact for any float64)."""
    n, m = a.shape[-1], b.shape[-1]
    pooled = np.concatenate([a, b], axis=-1).astype(np.float64) + 0.0
    order = np.argsort(pooled, axis=-1)
    values = np.take_along_axis(pooled, order, axis=-1)
    counts = np.cumsum(np.where(order < n, np.int64(m), np.int64(-n)), axis=-1)
    run_end = values[..., 1:] != values[..., :-1]
    return np.where(run_end, np.abs(counts[..., :-1]), 0).max(axis=-1, initial=0)


def _ks_sup_numpy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max over run ends of |n·m·(F_n − G_m)|, int64 (B,) (numpy, CPU).

    The sample label rides in the lowest bit of an order-preserving uint64 key, so one value sort
    (much faster than an argsort) gives both order and labels. A float64 key has no bit to spare: where
    the sorted keys show ties, rows whose ties merge distinct values one ulp apart are recomputed with an
    exact argsort (rows without ties cannot have merged anything).
    """
    n, m = a.shape[-1], b.shape[-1]
    keys, lossy = _labelled_keys(a, b)
    keys[..., n:] |= np.uint64(1)
    keys.sort(axis=-1)
    sup, tied_rows = _sup_of_sorted_keys(keys, n, m, wide=lossy)
    if lossy and tied_rows.any():
        rows = np.flatnonzero(tied_rows)
        merged = rows[_merged_rows(a[rows], b[rows])]
        if merged.size:
            sup[merged] = _ks_sup_argsort(a[merged], b[merged])
    return sup


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
    if n == m:  # equal sizes: mean |sorted difference|; sorted in the input dtype (float32 sorts ~2× faster)
        return (_sort_rows(a).to(torch.float64) - _sort_rows(b).to(torch.float64)).abs().mean(dim=-1)
    a, b = a.to(torch.float64), b.to(torch.float64)
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
