"""Replicate row sets, derived deterministically from (seed, stream, replicate index).

Rows are indices into the pooled sample [reference; candidate]: reference row i is i, candidate row j
is n_ref + j. Replicate i of a test is the same wherever (and in whatever chunk) it is computed.

Three kinds of replicate: "null" and "alt" (the thesis' replicates, spec §2 "Null construction") and "test",
the permutation null of the calibrated test: random re-splits of exactly the rows of one held-out experiment
(`held_out_rows`), which has its own random streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from caloray.validate.design import ExperimentDesign

Kind = Literal["null", "alt", "test"]
KINDS: tuple[Kind, ...] = ("null", "alt", "test")
NULL_STREAM, ALT_STREAM, SHUFFLE_STREAM, HELD_OUT_STREAM, TEST_SHUFFLE_STREAM = 0, 1, 2, 3, 4


def replicate_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The random generator of one replicate: a SeedSequence of (seed, stream, index)."""
    return np.random.default_rng([int(seed), int(stream), int(index)])


def draw_rows(rng: np.random.Generator, pool: int, size: int, count: int = 1) -> np.ndarray:
    """`count` draws of `size` rows from range(pool): (count, size) int64.

    Disjoint and without replacement when pool ≥ count·size, otherwise independently with replacement.
    """
    if pool < 1:
        raise ValueError("cannot draw rows from an empty sample")
    if pool >= count * size:
        return rng.choice(pool, size=count * size, replace=False).reshape(count, size).astype(np.int64)
    return rng.integers(0, pool, size=(count, size), dtype=np.int64)


def held_out_size(design: ExperimentDesign, n_ref: int, n_cand: int) -> int:
    """Rows per sample of the calibrated test's experiment: batch_size, or fewer when a sample is smaller."""
    size = min(design.batch_size, n_ref, n_cand)
    if size < 2:
        raise ValueError(f"the calibrated test needs ≥ 2 rows per sample, got {n_ref} reference and {n_cand} "
                         "candidate rows")
    return size


def held_out_rows(design: ExperimentDesign, n_ref: int, n_cand: int) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated test's experiment: `held_out_size` distinct reference rows and as many distinct candidate
    rows (pooled indices), drawn without replacement from their own stream, so no row repeats: under H0 the
    2·size pooled rows are exchangeable and the permutation null of exactly these rows gives a uniform p-value."""
    size = held_out_size(design, n_ref, n_cand)
    rng = replicate_rng(design.seed, HELD_OUT_STREAM, 0)
    x_rows = rng.choice(n_ref, size=size, replace=False).astype(np.int64)
    y_rows = n_ref + rng.choice(n_cand, size=size, replace=False).astype(np.int64)
    return x_rows, y_rows


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on uint64 arrays (wrapping arithmetic): a bijective, well-mixing hash."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def permutation_orders(seed: int, stream: int, indices: Sequence[int], width: int) -> np.ndarray:
    """Random permutations of range(width), one per replicate index: (len(indices), width) int64.

    Permutation i sorts the hash keys of (seed, stream, i, position), so it depends only on (seed, stream, i) —
    the same in any chunk, on any worker — and a whole chunk is drawn in one vectorized argsort instead of one
    generator per replicate (which dominated the calibrated test's cost for small batches).
    """
    key = _mix64(_mix64(np.array([seed], dtype=np.uint64)) + np.uint64(stream))
    per_index = _mix64(key + np.asarray(list(indices), dtype=np.uint64))
    positions = np.arange(width, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03)
    return np.argsort(_mix64(per_index[:, None] ^ positions[None, :]), axis=1, kind="stable").astype(np.int64)


def permuted_splits(pooled: np.ndarray, indices: Sequence[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Permutations `indices` of the calibrated test's pooled rows (2·size,), each split into two halves:
    (C, size) and (C, size)."""
    shuffled = pooled[permutation_orders(seed, TEST_SHUFFLE_STREAM, indices, pooled.size)]
    half = pooled.size // 2
    return shuffled[:, :half], shuffled[:, half:]


def replicate_rows(
    kind: Kind, index: int, design: ExperimentDesign, n_ref: int, n_cand: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled row indices (x_rows, y_rows), each (batch_size,), of replicate `index` of `kind` ("test": each
    (held_out_size,))."""
    if kind == "test":
        x_rows, y_rows = permuted_splits(np.concatenate(held_out_rows(design, n_ref, n_cand)), [index], design.seed)
        return x_rows[0], y_rows[0]
    size = design.batch_size
    if kind == "alt" or design.mode == "permutation":
        rng = replicate_rng(design.seed, ALT_STREAM, index)
        x_rows = draw_rows(rng, n_ref, size)[0]
        y_rows = n_ref + draw_rows(rng, n_cand, size)[0]
        if kind == "alt":
            return x_rows, y_rows
        pooled = np.concatenate([x_rows, y_rows])
        shuffled = replicate_rng(design.seed, SHUFFLE_STREAM, index).permutation(pooled)
        return shuffled[:size], shuffled[size:]
    if kind != "null":
        raise ValueError(f"kind must be 'null' or 'alt', got {kind!r}")
    both = draw_rows(replicate_rng(design.seed, NULL_STREAM, index), n_ref, size, count=2)
    return both[0], both[1]


def chunk_rows(
    kind: Kind, indices: Sequence[int], design: ExperimentDesign, n_ref: int, n_cand: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of several replicates stacked: (C, batch_size) for x and for y."""
    if kind == "test":  # the held-out rows once, all permutations of the chunk in one go
        return permuted_splits(np.concatenate(held_out_rows(design, n_ref, n_cand)), indices, design.seed)
    pairs = [replicate_rows(kind, int(i), design, n_ref, n_cand) for i in indices]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
