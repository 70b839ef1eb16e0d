"""The experiment design of a two-sample test: batch size, number of replicates, slices, seed, mode."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from caloray.stats import StatisticContext
from caloray.stats.llr import LogDensity

Mode = Literal["bootstrap", "permutation"]
MODES: tuple[str, ...] = ("bootstrap", "permutation")


@dataclass(frozen=True)
class ExperimentDesign:
    """How null and alternative replicates are built (spec/science.md §2, "Null construction").

    batch_size: rows per sample in one experiment (replicate).
    n_iter: number of null replicates, of alternative replicates, and of permutations in the calibrated test.
    n_slices: random directions K for the sliced statistics, drawn once from `seed`.
    seed: everything random (rows of replicate i, directions, FGD∞ subsamples) derives from it.
    mode: "bootstrap" — null replicates compare two draws from the reference (disjoint draws without
        replacement when the reference has ≥ 2·batch_size rows, otherwise independent draws with
        replacement); "permutation" — null replicate i pools the reference and candidate rows of
        alternative replicate i and splits a random permutation of them into two halves.
        Alternative replicates compare a reference draw with a candidate draw (each without
        replacement when its sample has ≥ batch_size rows, otherwise with replacement).
        The mode shapes the thesis summary (median_p, power); the calibrated test that gates is the same in both
        modes: a held-out experiment against the permutation null of exactly its rows (`sampling.held_out_rows`).
    chunk_size: replicates computed per batched call (None: chosen from a memory budget).
    """

    batch_size: int
    n_iter: int
    n_slices: int = 100
    seed: int = 0
    mode: Mode = "bootstrap"
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if self.n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
        if self.n_slices < 1:
            raise ValueError(f"n_slices must be >= 1, got {self.n_slices}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {self.chunk_size}")

    def context(self, d: int, log_p: LogDensity | None = None, log_q: LogDensity | None = None) -> StatisticContext:
        """The statistic context of a d-dimensional test: directions and FGD∞ subsampling from `seed`."""
        return StatisticContext.for_dimension(d, self.n_slices, self.seed, log_p=log_p, log_q=log_q)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serializable) for metadata and tables."""
        return asdict(self)
