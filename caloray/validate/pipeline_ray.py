"""Ray Data variant of the replicate computation: ray.data.range(n_iter) → map_batches over chunks.

The reference and candidate arrays go into the object store once (`ray.put`); every task reads them
zero-copy. Replicate i uses the same rows as in the local path, so both return the same arrays.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import ray
import torch

from caloray.stats import StatisticContext
from caloray.stats.llr import LogDensity
from caloray.stats.ranked import RankedPool
from caloray.validate.design import ExperimentDesign
from caloray.validate.replicates import (
    ArrayLike,
    Replicates,
    auto_chunk_size,
    chunk_bounds,
    held_out_statistic,
    pool_chunk,
    prepare_pools,
)
from caloray.validate.sampling import KINDS, Kind, held_out_size
from caloray.validate.summary import TestResult


def _as_numpy(a: ArrayLike) -> np.ndarray:
    array = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if array.ndim == 1:
        array = array[:, None]
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def put_features(features: ArrayLike | ray.ObjectRef) -> ray.ObjectRef:
    """A (rows, d) feature array in the object store (as numpy); an ObjectRef is passed through, so
    callers running many tests on one feature map put it once."""
    if isinstance(features, ray.ObjectRef):
        return features
    return ray.put(_as_numpy(features))


def _replicate_batch(
    batch: dict[str, np.ndarray],
    data_refs: list[ray.ObjectRef],
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext,
    chunk: int,
    prepared: list[ray.ObjectRef] | None = None,
    kinds: tuple[Kind, ...] = ("null", "alt"),
) -> dict[str, np.ndarray]:
    """map_batches function: the values of each kind in `kinds` of the replicate ids in `batch["id"]`.

    Ids are evaluated in the same aligned chunks as the local path; a chunk only partly inside
    this batch (possible only if Ray splits blocks off chunk boundaries) is evaluated whole.
    """
    if prepared:  # a list, so Ray passes the ref itself (the pools are fetched once per task)
        pools = ray.get(prepared[0])
    else:
        reference, candidate = ray.get(data_refs)  # zero-copy, read-only views of the object store
        with warnings.catch_warnings():  # torch warns about read-only numpy memory; nothing writes to it
            warnings.simplefilter("ignore", UserWarning)
            # untransformed pools, or lazily sorted ones (cheap to set up again here)
            pools = prepare_pools(torch.as_tensor(reference), torch.as_tensor(candidate), statistic, context,
                                  design.batch_size)
    ids = np.asarray(batch["id"], dtype=np.int64)
    out = {kind: np.empty(ids.size, dtype=np.float64) for kind in kinds}
    chunk_of = ids // chunk
    for chunk_index in np.unique(chunk_of).tolist():
        span = chunk_bounds(chunk_index, chunk, design.n_iter)
        here = chunk_of == chunk_index
        for kind, values in zip(kinds, pool_chunk(pools, design, context, chunk_index, chunk, kinds), strict=True):
            out[kind][here] = values[ids[here] - span.start]
    return {"replicate": ids, **out}


def aligned_block_count(n_iter: int, chunk: int, target: int) -> int:
    """A block count near `target` for which ray.data.range's blocks (n_iter // blocks rows each)
    start on chunk boundaries; 1 if none does."""
    n_chunks = math.ceil(n_iter / chunk)
    for blocks in sorted(range(1, n_chunks + 1), key=lambda b: abs(b - target)):
        if (n_iter // blocks) % chunk == 0:
            return blocks
    return 1


def replicate_values_ray(
    reference: ArrayLike | ray.ObjectRef,
    candidate: ArrayLike | ray.ObjectRef,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext | None = None,
    concurrency: int | None = None,
    num_cpus_per_task: float = 1.0,
    blocks: int | None = None,
    with_test: bool = True,
) -> Replicates:
    """Same result as `replicates.replicate_values` (bit for bit), computed by Ray Data tasks.

    reference/candidate: (rows, d) arrays, or ObjectRefs from `put_features` (not copied again).

    `concurrency` caps the number of tasks running at once (None: as many as Ray schedules);
    `blocks` is the target number of blocks of ray.data.range(n_iter) (default: one per chunk, at
    most 4 × the cluster's CPUs). The calibrated test's held-out experiment (one evaluation) is computed
    here, its permutations in the tasks. Requires an initialized Ray (or starts a default local one).
    """
    data_refs = [put_features(reference), put_features(candidate)]
    d_ref, d_cand = (ray.get(ref).shape[1] for ref in data_refs)  # zero-copy reads, for the shapes
    if d_ref != d_cand:
        raise ValueError(f"reference has d={d_ref} but candidate has d={d_cand}")
    context = context if context is not None else design.context(d_ref)
    # Pools transformed once for all replicates (projected and/or sorted, see `prepare_pools`) go to the object
    # store as they are; untransformed features (also when sorted lazily, per chunk) stay the zero-copy refs above.
    with warnings.catch_warnings():  # read-only object-store memory; preparing only reads it
        warnings.simplefilter("ignore", UserWarning)
        pools = prepare_pools(*(torch.as_tensor(ray.get(r)) for r in data_refs), statistic, context,
                              design.batch_size)
        test_statistic = held_out_statistic(pools, design, context) if with_test else None
    chunk = auto_chunk_size(design, d_ref, pools)
    transformed = pools.projected or isinstance(pools.ranked, RankedPool)
    pools_ref = ray.put(pools) if transformed else None
    if blocks is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        blocks = min(math.ceil(design.n_iter / chunk), 4 * max(cpus, 1))
    n_blocks = aligned_block_count(design.n_iter, chunk, blocks)
    kinds: tuple[Kind, ...] = KINDS if with_test else ("null", "alt")
    options: dict[str, Any] = {"num_cpus": num_cpus_per_task}
    if concurrency is not None:
        options["compute"] = ray.data.TaskPoolStrategy(size=concurrency)
    dataset = ray.data.range(design.n_iter, override_num_blocks=n_blocks).map_batches(
        _replicate_batch,
        batch_size=None,
        batch_format="numpy",
        fn_kwargs={
            "data_refs": data_refs,
            "statistic": statistic,
            "design": design,
            "context": context,
            "chunk": chunk,
            "prepared": [pools_ref] if pools_ref is not None else [],
            "kinds": kinds,
        },
        **options,
    )
    out = {kind: np.empty(design.n_iter, dtype=np.float64) for kind in kinds}
    seen = np.zeros(design.n_iter, dtype=bool)
    for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
        for kind in kinds:
            out[kind][batch["replicate"]] = batch[kind]
        seen[batch["replicate"]] = True
    if not seen.all():
        raise RuntimeError(f"{np.count_nonzero(~seen)} replicates did not come back from the Ray pipeline")
    if not with_test:
        return Replicates(out["null"], out["alt"])
    batch_rows = held_out_size(design, pools.reference.shape[0], pools.candidate.shape[0])
    return Replicates(out["null"], out["alt"], out["test"], test_statistic, batch_rows)


def null_and_alternative_ray(
    reference: ArrayLike | ray.ObjectRef,
    candidate: ArrayLike | ray.ObjectRef,
    statistic: str,
    design: ExperimentDesign,
    context: StatisticContext | None = None,
    concurrency: int | None = None,
    num_cpus_per_task: float = 1.0,
    blocks: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Same result as `replicates.null_and_alternative` (bit for bit), computed by Ray Data tasks."""
    replicates = replicate_values_ray(reference, candidate, statistic, design, context, concurrency,
                                      num_cpus_per_task, blocks, with_test=False)
    return replicates.null, replicates.alt


def run_test_ray(
    reference: ArrayLike,
    candidate: ArrayLike,
    statistic: str,
    design: ExperimentDesign,
    log_p: LogDensity | None = None,
    log_q: LogDensity | None = None,
    concurrency: int | None = None,
) -> TestResult:
    """`replicates.run_test` on Ray: same replicates, same summary and calibrated test."""
    d = _as_numpy(reference).shape[1]
    context = design.context(d, log_p=log_p, log_q=log_q)
    return replicate_values_ray(reference, candidate, statistic, design, context, concurrency).result(statistic)
