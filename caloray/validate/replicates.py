"""Null and alternative replicate statistics, computed locally in batched chunks of replicates."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from caloray.stats import StatisticContext, get_statistic
from caloray.stats._shapes import WORK_ELEMENTS
from caloray.stats.llr import LogDensity
from caloray.validate.design import ExperimentDesign
from caloray.validate.sampling import Kind, chunk_rows
from caloray.validate.summary import TestResult, summarize

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


def auto_chunk_size(design: ExperimentDesign, d: int) -> int:
    """Replicates per batched call: `design.chunk_size`, or as many as keep the (C, B, max(d, K))
    batch and the (C, d, d) covariances (FGD) under the memory budget."""
    if design.chunk_size is not None:
        return design.chunk_size
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
    fn = get_statistic(statistic)
    x_rows, y_rows = chunk_rows(kind, indices, design, reference.shape[0], candidate.shape[0])
    x = gather_rows(reference, candidate, x_rows)
    y = gather_rows(reference, candidate, y_rows)
    return fn(x, y, context).cpu().numpy().astype(np.float64)


def chunk_bounds(chunk_index: int, chunk: int, n_iter: int) -> range:
    """Replicate indices of aligned chunk `chunk_index`: [c·chunk, min((c+1)·chunk, n_iter))."""
    return range(chunk_index * chunk, min((chunk_index + 1) * chunk, n_iter))


def chunk_null_and_alternative(
    reference: Tensor,
    candidate: Tensor,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext,
    chunk_index: int,
    chunk: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Null and alternative values of the replicates of one aligned chunk (see `chunk_bounds`).

    Batched reductions round differently for different batch shapes, so every path (local, Ray)
    evaluates replicates in the same aligned chunks: replicate i then has bit-identical values
    wherever it is computed.
    """
    indices = chunk_bounds(chunk_index, chunk, design.n_iter)
    null = replicate_statistics(reference, candidate, statistic, design, context, "null", indices)
    alt = replicate_statistics(reference, candidate, statistic, design, context, "alt", indices)
    return null, alt


def null_and_alternative(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext | None = None,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All `n_iter` null and alternative replicate values of `statistic`, each (n_iter,) float64.

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
    chunk = auto_chunk_size(design, ref.shape[1])
    null = np.empty(design.n_iter, dtype=np.float64)
    alt = np.empty(design.n_iter, dtype=np.float64)
    for chunk_index in range(math.ceil(design.n_iter / chunk)):
        span = chunk_bounds(chunk_index, chunk, design.n_iter)
        values = chunk_null_and_alternative(ref, cand, statistic, design, context, chunk_index, chunk)
        null[span.start : span.stop], alt[span.start : span.stop] = values
    return null, alt


def run_test(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    log_p: LogDensity | None = None,
    log_q: LogDensity | None = None,
    device: torch.device | str | None = None,
) -> TestResult:
    """Run one two-sample test locally and summarize it (observed, p-value, sigma, power)."""
    d = as_feature_tensor(reference).shape[1]
    context = design.context(d, log_p=log_p, log_q=log_q)
    null, alt = null_and_alternative(reference, candidate, statistic, design, context, device)
    return summarize(null, alt, statistic)
