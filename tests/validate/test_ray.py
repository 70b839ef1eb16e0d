"""Ray Data pipeline: bit-identical to the local path for the same design (one small Ray session)."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.validate import ExperimentDesign, null_and_alternative, replicate_values, run_test
from caloray.validate.pipeline_ray import (
    aligned_block_count,
    null_and_alternative_ray,
    replicate_values_ray,
    run_test_ray,
)
from caloray.validate.table import run_test_grid

RNG = np.random.default_rng(3)
REFERENCE = RNG.normal(size=(4000, 6))
CANDIDATE = RNG.normal(0.05, 1.0, size=(3000, 6))


@pytest.mark.integration
def test_ray_replicates_equal_local_replicates(ray_local) -> None:
    # blocks=3 gives blocks of 12 rows, off the 5-replicate chunk grid: exercises the fallback.
    # batch 1000 of a 7000-row pool: ranked pools (counting, caloray.stats.ranked) travel to the tasks.
    cases = [("mean-ks", "bootstrap", None, 50), ("swd", "permutation", 3, 50), ("fgd-inf", "bootstrap", None, 50),
             ("sks", "bootstrap", None, 1000), ("swd", "bootstrap", 3, 1000)]
    for statistic, mode, blocks, batch_size in cases:
        design = ExperimentDesign(batch_size=batch_size, n_iter=37, n_slices=8, seed=4, mode=mode, chunk_size=5)
        local = replicate_values(REFERENCE, CANDIDATE, statistic, design)
        remote = replicate_values_ray(REFERENCE, CANDIDATE, statistic, design, blocks=blocks)
        for kind in ("null", "alt", "test_null"):  # the calibrated test's permutations too
            np.testing.assert_array_equal(getattr(remote, kind), getattr(local, kind))
        assert remote.test_statistic == local.test_statistic and remote.test_batch == local.test_batch


@pytest.mark.integration
def test_ray_lazily_sorted_pools_equal_local(ray_local, monkeypatch) -> None:
    # Locally the pool is "too large" to keep sorted (sorted per chunk, LazyRankedPool); the driver then ships the
    # raw features and each task prepares its own pools (sorted once there, with the default limit). Counting is
    # exact either way, so the values agree bit for bit.
    import caloray.validate.replicates as replicates

    monkeypatch.setattr(replicates, "RANK_MAX_ELEMENTS", 1000)
    for statistic in ("mean-ks", "swd"):
        design = ExperimentDesign(batch_size=1000, n_iter=12, n_slices=8, seed=5, chunk_size=4)
        local_null, local_alt = null_and_alternative(REFERENCE, CANDIDATE, statistic, design)
        ray_null, ray_alt = null_and_alternative_ray(REFERENCE, CANDIDATE, statistic, design)
        np.testing.assert_array_equal(ray_null, local_null)
        np.testing.assert_array_equal(ray_alt, local_alt)


@pytest.mark.integration
def test_ray_test_result_and_grid_match_local(ray_local) -> None:
    design = ExperimentDesign(batch_size=40, n_iter=20, n_slices=8, seed=1, chunk_size=5)
    local = run_test(REFERENCE, CANDIDATE, "sks", design)
    remote = run_test_ray(REFERENCE, CANDIDATE, "sks", design, concurrency=2)
    assert remote.summary() == local.summary() and "p_value" in local.summary()
    np.testing.assert_array_equal(remote.test.null, local.test.null)
    features = {"all": (REFERENCE, CANDIDATE), "first": (REFERENCE[:, :1], CANDIDATE[:, :1])}
    grid_local = run_test_grid(features, ["mean-ks"], design)
    grid_ray = run_test_grid(features, ["mean-ks"], design, backend="ray")
    assert grid_ray.to_pylist() == grid_local.to_pylist()


def test_aligned_block_count() -> None:
    assert (100 // aligned_block_count(100, 10, 4)) % 10 == 0
    assert aligned_block_count(100, 10, 4) in (5, 2)  # 20 or 50 rows per block
    assert aligned_block_count(7, 3, 2) == 2  # blocks of 3 rows: 0-2, 3-5, 6
    assert aligned_block_count(10, 4, 2) == 1  # no block size of 10 // b rows is a multiple of 4
