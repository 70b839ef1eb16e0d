"""Null, alternative and calibrated-test replicate statistics, computed locally in batched chunks of replicates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from caloray.stats import StatisticContext, get_statistic
from caloray.stats._shapes import WORK_ELEMENTS, ks_scale
from caloray.stats.ks import mean_ks
from caloray.stats.llr import LogDensity
from caloray.stats.projections import project
from caloray.stats.ranked import LazyRankedPool, SortedPool, ks_sup_ranked, ranked_pool, wasserstein1_ranked
from caloray.stats.sliced import mean_wasserstein
from caloray.validate.design import ExperimentDesign
from caloray.validate.sampling import KINDS, Kind, chunk_rows, held_out_rows, held_out_size
from caloray.validate.summary import CalibratedTest, TestResult, calibrated_test, summarize

ArrayLike = np.ndarray | Tensor


def as_feature_tensor(a: ArrayLike) -> Tensor:
    """A (rows, d) feature array as a tensor, without copying numpy input; 1-D input becomes (rows, 1)."""
    t = torch.as_tensor(a)
    if t.dim() == 1:
        t = t.unsqueeze(1)
    if t.dim() != 2:
        raise ValueError(f"feature arrays must be (rows, d), got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


def auto_chunk_size(design: ExperimentDesign, d: int, pools: ReplicatePools | None = None) -> int:
    """Replicates per batched call: `design.chunk_size`, or as many as keep the (C, B, max(d, K))
    batch and the (C, d, d) covariances (FGD) under the memory budget; for pools that count over sorted
    columns (no such arrays) RANKED_CHUNK, which spreads a lazily sorted pool's sort over many replicates."""
    if design.chunk_size is not None:
        return design.chunk_size
    if pools is not None and pools.ranked is not None:
        return max(1, min(design.n_iter, RANKED_CHUNK, WORK_ELEMENTS // (2 * design.batch_size)))
    by_rows = WORK_ELEMENTS // (design.batch_size * max(d, design.n_slices))
    by_covariance = WORK_ELEMENTS // (d * d)
    return max(1, min(design.n_iter, by_rows, by_covariance))


def gather_rows(reference: Tensor, candidate: Tensor, rows: np.ndarray) -> Tensor:
    """Rows of the pooled sample [reference; candidate] at `rows` (C, B) → (C, B, d)."""
    index = torch.as_tensor(rows, dtype=torch.long)
    n_ref = reference.shape[0]
    dtype = torch.promote_types(reference.dtype, candidate.dtype)
    out = torch.empty(*index.shape, reference.shape[1], dtype=dtype, device=reference.device)
    from_ref = index < n_ref
    out[from_ref] = reference[index[from_ref].to(reference.device)].to(dtype)
    from_cand = ~from_ref
    if from_cand.any():
        out[from_cand] = candidate[(index[from_cand] - n_ref).to(candidate.device)].to(dtype).to(out.device)
    return out


#: Sliced statistics as the per-column statistic of projected samples. The K directions are fixed for all
#: replicates of a test (spec §2) and projection is linear, so the pools are projected once and every
#: replicate gathers projected rows: no (batch × d × K) matrix product per replicate.
SLICED_AS_PER_COLUMN = {"sks": "mean-ks", "swd": "mean-w1"}
#: Per-column statistics that can count over per-column ranks of the pool (caloray.stats.ranked) instead of
#: sorting each replicate. Per replicate and column, counting costs ~P (gather, cumulative sum, reduce over the
#: pool's P rows) and sorting ~(n + m)·log2(n + m) comparisons; this is the cost of one sorted element-level
#: relative to one counted pool row. A fixed row ratio (P ≤ 8·batch) sent batch 4k of a ~40k-row pool to the
#: sort path, 1.7× slower than counting and 2.8× slower per replicate than batch 16k (issue 14); 0.5 puts that
#: case on the counting side with margin and keeps small batches of large pools sorting.
SORT_COST_PER_LEVEL = 0.5
#: Pools up to this many elements (rows × columns) are sorted once and kept sorted (int64 order, 1 GiB);
#: larger ones are sorted block by block for every chunk of replicates (LazyRankedPool).
RANK_MAX_ELEMENTS = 1 << 27
#: Replicates per chunk (null and alternative evaluated together) when counting over sorted columns.
RANKED_CHUNK = 16


@dataclass(frozen=True)
class ReplicatePools:
    """What replicates draw rows from: reference (N, ·) and candidate (M, ·) in the form `statistic` reads —
    the features themselves, or for a sliced statistic their (N, K) float64 projections (`projected`); KS/W1-type
    statistics may instead count over the pool's sorted columns (`ranked`; sorted once, then reference/candidate
    are (N, 0) and (M, 0) placeholders, or sorted lazily per chunk, then they stay)."""

    reference: Tensor
    candidate: Tensor
    statistic: str
    projected: bool = False
    ranked: SortedPool | None = None

    @property
    def per_column(self) -> str | None:
        """The per-column statistic evaluated on the pools ("mean-ks", "mean-w1"), or None."""
        if self.projected:
            return SLICED_AS_PER_COLUMN[self.statistic]
        return "mean-ks" if self.statistic == "mean-ks" else None

    def evaluate(self, x_rows: np.ndarray, y_rows: np.ndarray, context: StatisticContext) -> Tensor:
        """The statistic of the replicates with rows x_rows (R, n), y_rows (R, m) of [reference; candidate]."""
        if self.ranked is not None:
            if self.per_column == "mean-w1":
                return wasserstein1_ranked(self.ranked, x_rows, y_rows).mean(dim=-1)
            per_dimension = ks_sup_ranked(self.ranked, x_rows, y_rows)
            # scaled per column, then averaged: the sorting path's order of operations (bit-identical values)
            return (ks_scale(x_rows.shape[1], y_rows.shape[1]) * per_dimension).mean(dim=-1)
        x = gather_rows(self.reference, self.candidate, x_rows)
        y = gather_rows(self.reference, self.candidate, y_rows)
        if self.per_column == "mean-w1":
            return mean_wasserstein(x, y)
        if self.per_column == "mean-ks":
            return mean_ks(x, y)
        return get_statistic(self.statistic)(x, y, context)


def ranked_is_cheaper(pool_rows: int, batch_size: int) -> bool:
    """Whether counting over the sorted pool (`pool_rows` P rows) beats sorting each replicate of `batch_size`
    rows per sample: P ≤ SORT_COST_PER_LEVEL · 2B · log2(2B). Either path gives bit-identical values."""
    replicate_rows = 2 * batch_size
    return pool_rows <= SORT_COST_PER_LEVEL * replicate_rows * math.log2(max(replicate_rows, 2))


def prepare_pools(reference: Tensor, candidate: Tensor, statistic: str, context: StatisticContext,
                  batch_size: int | None = None) -> ReplicatePools:
    """The pools of one test, transformed once for all its replicates: sliced statistics project both samples
    onto `context.directions`; KS/W1-type statistics on the CPU count over the pool's sorted columns when
    counting beats sorting replicates of `batch_size` rows per sample (`ranked_is_cheaper`): sorted here, or,
    past RANK_MAX_ELEMENTS, block by block for each chunk of replicates."""
    get_statistic(statistic)  # unknown names fail here, before any work
    pools = ReplicatePools(reference, candidate, statistic)
    if statistic in SLICED_AS_PER_COLUMN and context.directions is not None:
        pools = ReplicatePools(project(reference, context.directions)[0], project(candidate, context.directions)[0],
                               statistic, projected=True)
    rows = pools.reference.shape[0] + pools.candidate.shape[0]
    if (pools.per_column is not None and batch_size is not None and pools.reference.device.type == "cpu"
            and ranked_is_cheaper(rows, batch_size)):
        with_gaps = pools.per_column == "mean-w1"
        if rows * pools.reference.shape[1] > RANK_MAX_ELEMENTS:
            return ReplicatePools(pools.reference, pools.candidate, statistic, pools.projected,
                                  LazyRankedPool(pools.reference, pools.candidate, with_gaps))
        ranked = ranked_pool(pools.reference, pools.candidate, with_gaps=with_gaps)
        placeholders = (torch.empty(pools.reference.shape[0], 0), torch.empty(pools.candidate.shape[0], 0))
        pools = ReplicatePools(*placeholders, statistic, pools.projected, ranked)
    return pools


def pool_statistics(
    pools: ReplicatePools, design: ExperimentDesign, context: StatisticContext, kind: Kind, indices: Sequence[int]
) -> np.ndarray:
    """The statistic of replicates `indices` of `kind` drawn from prepared pools, (len(indices),) float64."""
    x_rows, y_rows = chunk_rows(kind, indices, design, pools.reference.shape[0], pools.candidate.shape[0])
    return pools.evaluate(x_rows, y_rows, context).cpu().numpy().astype(np.float64)


def replicate_statistics(
    reference: Tensor,
    candidate: Tensor,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext,
    kind: Kind,
    indices: Sequence[int],
) -> np.ndarray:
    """The statistic of replicates `indices` of `kind` ("null"/"alt"), (len(indices),) float64.

    The listed replicates are evaluated together in one batched call; callers chunk.
    """
    pools = prepare_pools(reference, candidate, statistic, context, design.batch_size)
    return pool_statistics(pools, design, context, kind, indices)


def chunk_bounds(chunk_index: int, chunk: int, n_iter: int) -> range:
    """Replicate indices of aligned chunk `chunk_index`: [c·chunk, min((c+1)·chunk, n_iter))."""
    return range(chunk_index * chunk, min((chunk_index + 1) * chunk, n_iter))


def pool_chunk(
    pools: ReplicatePools, design: ExperimentDesign, context: StatisticContext, chunk_index: int, chunk: int,
    kinds: Sequence[Kind] = ("null", "alt"),
) -> tuple[np.ndarray, ...]:
    """Values of the replicates of one aligned chunk (see `chunk_bounds`), one array per kind in `kinds`.

    Batched reductions round differently for different batch shapes, so every path (local, Ray)
    evaluates replicates in the same aligned chunks: replicate i then has bit-identical values
    wherever it is computed. Null and alternative values do not depend on whether "test" is requested.
    """
    indices = chunk_bounds(chunk_index, chunk, design.n_iter)
    values: dict[str, np.ndarray] = {}
    if pools.ranked is not None and "null" in kinds and "alt" in kinds:
        # one pass over the sorted columns for both kinds (one sort if lazily sorted)
        n_ref, n_cand = pools.reference.shape[0], pools.candidate.shape[0]
        null_rows = chunk_rows("null", indices, design, n_ref, n_cand)
        alt_rows = chunk_rows("alt", indices, design, n_ref, n_cand)
        x_rows, y_rows = (np.concatenate([a, b]) for a, b in zip(null_rows, alt_rows, strict=True))
        both = pools.evaluate(x_rows, y_rows, context).cpu().numpy().astype(np.float64)
        values["null"], values["alt"] = both[: len(indices)], both[len(indices) :]
    for kind in kinds:
        if kind not in values:
            values[kind] = pool_statistics(pools, design, context, kind, indices)
    return tuple(values[kind] for kind in kinds)


def held_out_statistic(pools: ReplicatePools, design: ExperimentDesign, context: StatisticContext) -> float:
    """The statistic of the calibrated test's held-out experiment (`sampling.held_out_rows`)."""
    x_rows, y_rows = held_out_rows(design, pools.reference.shape[0], pools.candidate.shape[0])
    return float(pools.evaluate(x_rows[None], y_rows[None], context).cpu().numpy().astype(np.float64)[0])


def chunk_null_and_alternative(
    reference: Tensor,
    candidate: Tensor,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext,
    chunk_index: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`pool_chunk` on raw features (prepares the pools for this one chunk)."""
    pools = prepare_pools(reference, candidate, statistic, context, design.batch_size)
    null, alt = pool_chunk(pools, design, context, chunk_index, chunk)
    return null, alt


@dataclass(frozen=True, eq=False)
class Replicates:
    """All replicate values of one test: null and alternative (n_iter,) and, when computed, the calibrated test's
    held-out experiment value `test_statistic` (on `test_batch` rows per sample) and its permutation null
    `test_null` (n_iter,)."""

    null: np.ndarray
    alt: np.ndarray
    test_null: np.ndarray | None = None
    test_statistic: float | None = None
    test_batch: int = 0

    def result(self, statistic: str) -> TestResult:
        """The `TestResult`: the thesis summary, and the calibrated test when it was computed."""
        test = None
        if self.test_null is not None and self.test_statistic is not None:
            test = calibrated_test(self.test_null, self.test_statistic, self.test_batch)
        return summarize(self.null, self.alt, statistic, test)


def replicate_values(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext | None = None,
    device: torch.device | str | None = None,
    with_test: bool = True,
) -> Replicates:
    """All `n_iter` null and alternative replicate values of `statistic`, and with `with_test` the calibrated test
    (its held-out experiment and `n_iter` permutations of it).

    reference (N, d) and candidate (M, d) are the two feature samples; `device` defaults to the
    reference's. Replicates are computed in aligned chunks of `auto_chunk_size` at once.
    """
    ref = as_feature_tensor(reference)
    cand = as_feature_tensor(candidate)
    if ref.shape[1] != cand.shape[1]:
        raise ValueError(f"reference has d={ref.shape[1]} but candidate has d={cand.shape[1]}")
    if device is not None:
        ref, cand = ref.to(device), cand.to(device)
    context = context if context is not None else design.context(ref.shape[1])
    pools = prepare_pools(ref, cand, statistic, context, design.batch_size)
    chunk = auto_chunk_size(design, ref.shape[1], pools)
    kinds: tuple[Kind, ...] = KINDS if with_test else ("null", "alt")
    out = {kind: np.empty(design.n_iter, dtype=np.float64) for kind in kinds}
    for chunk_index in range(math.ceil(design.n_iter / chunk)):
        span = chunk_bounds(chunk_index, chunk, design.n_iter)
        for kind, values in zip(kinds, pool_chunk(pools, design, context, chunk_index, chunk, kinds), strict=True):
            out[kind][span.start : span.stop] = values
    if not with_test:
        return Replicates(out["null"], out["alt"])
    batch = held_out_size(design, ref.shape[0], cand.shape[0])
    return Replicates(out["null"], out["alt"], out["test"], held_out_statistic(pools, design, context), batch)


def held_out_test(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext | None = None,
) -> CalibratedTest:
    """Only the calibrated test (no thesis replicates): the held-out experiment against its `n_iter` permutations,
    computed in the same aligned chunks as `replicate_values`, hence the same values."""
    ref, cand = as_feature_tensor(reference), as_feature_tensor(candidate)
    if ref.shape[1] != cand.shape[1]:
        raise ValueError(f"reference has d={ref.shape[1]} but candidate has d={cand.shape[1]}")
    context = context if context is not None else design.context(ref.shape[1])
    pools = prepare_pools(ref, cand, statistic, context, design.batch_size)
    chunk = auto_chunk_size(design, ref.shape[1], pools)
    null = np.concatenate([pool_chunk(pools, design, context, c, chunk, ("test",))[0]
                           for c in range(math.ceil(design.n_iter / chunk))])
    return calibrated_test(null, held_out_statistic(pools, design, context),
                           held_out_size(design, ref.shape[0], cand.shape[0]))


def null_and_alternative(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext | None = None,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All `n_iter` null and alternative replicate values of `statistic`, each (n_iter,) float64 (no calibrated
    test; see `replicate_values`)."""
    replicates = replicate_values(reference, candidate, statistic, design, context, device, with_test=False)
    return replicates.null, replicates.alt


def run_test(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    log_p: LogDensity | None = None,
    log_q: LogDensity | None = None,
    device: torch.device | str | None = None,
) -> TestResult:
    """Run one two-sample test locally: the calibrated test (p_value, sigma) and the thesis summary (observed,
    median_p, power)."""
    d = as_feature_tensor(reference).shape[1]
    context = design.context(d, log_p=log_p, log_q=log_q)
    return replicate_values(reference, candidate, statistic, design, context, device).result(statistic)
