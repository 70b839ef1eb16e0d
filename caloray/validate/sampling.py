"""Replicate row sets, derived deterministically from (seed, stream, replicate index).

Rows are indices into the pooled sample [reference; candidate]: reference row i is i, candidate row j
is n_ref + j. Replicate i of a test is the same wherever (and in whatever chunk) it is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from caloray.validate.design import ExperimentDesign

Kind = Literal["null", "alt"]
NULL_STREAM, ALT_STREAM, SHUFFLE_STREAM = 0, 1, 2


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


def replicate_rows(
    kind: Kind, index: int, design: ExperimentDesign, n_ref: int, n_cand: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled row indices (x_rows, y_rows), each (batch_size,), of replicate `index` of `kind`."""
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
    pairs = [replicate_rows(kind, int(i), design, n_ref, n_cand) for i in indices]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
