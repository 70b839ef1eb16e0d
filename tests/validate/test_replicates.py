"""Local replicate computation: chunk-independent, replicate i reproducible, right rows used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.stats import numpy_api as api
from caloray.validate import (
    ExperimentDesign,
    held_out_rows,
    null_and_alternative,
    replicate_rows,
    replicate_statistics,
    replicate_values,
    run_test,
)
from caloray.validate.replicates import auto_chunk_size, chunk_null_and_alternative, held_out_test, prepare_pools

RNG = np.random.default_rng(0)
REFERENCE = RNG.normal(size=(3000, 5))
CANDIDATE = RNG.normal(0.1, 1.0, size=(2000, 5))


@pytest.mark.parametrize("statistic", ["mean-ks", "sks", "swd", "mmd", "fgd", "fgd-inf"])
def test_chunking_changes_replicates_only_by_rounding(statistic: str) -> None:
    """Different chunk sizes batch different replicates together: values agree to rounding only.
    (The same design always uses the same aligned chunks, hence bit-identical values, see test_ray.)"""
    results = [
        null_and_alternative(
            REFERENCE,
            CANDIDATE,
            statistic,
            ExperimentDesign(batch_size=40, n_iter=12, n_slices=8, chunk_size=c),
        )
        for c in (1, 5, None)
    ]
    for null, alt in results[1:]:
        np.testing.assert_allclose(null, results[0][0], rtol=1e-12)
        np.testing.assert_allclose(alt, results[0][1], rtol=1e-12)


def test_replicate_values_are_the_statistic_of_the_drawn_rows() -> None:
    design = ExperimentDesign(batch_size=40, n_iter=6, n_slices=8, seed=9)
    null, alt = null_and_alternative(REFERENCE, CANDIDATE, "swd", design)
    directions = api.random_directions(5, 8, seed=9)
    pooled = np.concatenate([REFERENCE, CANDIDATE])
    for i in (0, 5):
        x_rows, y_rows = replicate_rows("null", i, design, len(REFERENCE), len(CANDIDATE))
        expected = api.sliced_wasserstein(pooled[x_rows], pooled[y_rows], directions)[0]
        assert null[i] == pytest.approx(expected, rel=1e-12)
        x_rows, y_rows = replicate_rows("alt", i, design, len(REFERENCE), len(CANDIDATE))
        expected = api.sliced_wasserstein(pooled[x_rows], pooled[y_rows], directions)[0]
        assert alt[i] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("statistic", ["mean-ks", "swd", "mmd"])
def test_calibrated_test_is_the_statistic_of_the_held_out_and_permuted_rows(statistic: str) -> None:
    design = ExperimentDesign(batch_size=60, n_iter=9, n_slices=8, seed=6)
    replicates = replicate_values(REFERENCE, CANDIDATE, statistic, design)
    pooled = np.concatenate([REFERENCE, CANDIDATE])
    fn = {"mean-ks": lambda x, y: api.mean_ks(x, y), "mmd": lambda x, y: api.mmd_polynomial(x, y),
          "swd": lambda x, y: api.sliced_wasserstein(x, y, api.random_directions(5, 8, seed=6))}[statistic]
    x_rows, y_rows = held_out_rows(design, len(REFERENCE), len(CANDIDATE))
    assert replicates.test_batch == 60
    assert replicates.test_statistic == pytest.approx(fn(pooled[x_rows], pooled[y_rows])[0], rel=1e-12)
    for i in (0, 8):
        x_rows, y_rows = replicate_rows("test", i, design, len(REFERENCE), len(CANDIDATE))
        assert replicates.test_null[i] == pytest.approx(fn(pooled[x_rows], pooled[y_rows])[0], rel=1e-12)
    # the thesis replicates do not depend on whether the calibrated test is computed
    null, alt = null_and_alternative(REFERENCE, CANDIDATE, statistic, design)
    np.testing.assert_array_equal(null, replicates.null)
    np.testing.assert_array_equal(alt, replicates.alt)
    # the calibrated test alone gives the same values, and run_test reports it as the p-value
    alone = held_out_test(REFERENCE, CANDIDATE, statistic, design)
    np.testing.assert_array_equal(alone.null, replicates.test_null)
    result = run_test(REFERENCE, CANDIDATE, statistic, design)
    assert result.p_value == alone.p_value == replicates.result(statistic).p_value


def test_single_replicate_matches_the_full_run() -> None:
    design = ExperimentDesign(batch_size=40, n_iter=10, n_slices=8, seed=2, mode="permutation")
    null, alt = null_and_alternative(REFERENCE, CANDIDATE, "sks", design)
    context = design.context(5)
    ref, cand = torch.as_tensor(REFERENCE), torch.as_tensor(CANDIDATE)
    assert replicate_statistics(ref, cand, "sks", design, context, "null", [7])[0] == pytest.approx(null[7], rel=1e-12)
    assert replicate_statistics(ref, cand, "sks", design, context, "alt", [7])[0] == pytest.approx(alt[7], rel=1e-12)
    # The aligned chunk holding replicate 7 reproduces it bit for bit.
    chunk = auto_chunk_size(design, 5, prepare_pools(ref, cand, "sks", context, design.batch_size))
    chunk_null, chunk_alt = chunk_null_and_alternative(ref, cand, "sks", design, context, 7 // chunk, chunk)
    assert chunk_null[7 % chunk] == null[7] and chunk_alt[7 % chunk] == alt[7]


def test_float32_features_and_one_dimensional_input() -> None:
    design = ExperimentDesign(batch_size=30, n_iter=4, seed=1)
    null32, _ = null_and_alternative(REFERENCE.astype(np.float32), CANDIDATE.astype(np.float32), "mean-ks", design)
    assert null32.dtype == np.float64
    null1d, _ = null_and_alternative(REFERENCE[:, 0], CANDIDATE[:, 0], "mean-ks", design)
    null_col, _ = null_and_alternative(REFERENCE[:, :1], CANDIDATE[:, :1], "mean-ks", design)
    np.testing.assert_array_equal(null1d, null_col)


def test_dimension_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="d="):
        null_and_alternative(REFERENCE, CANDIDATE[:, :3], "mean-ks", ExperimentDesign(batch_size=10, n_iter=2))


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("statistic", ["mean-ks", "sks", "swd"])
def test_ranked_pools_give_the_sorted_values(statistic: str, lazy: bool, monkeypatch) -> None:
    """Replicates that are a large share of the pool count over the pool's sorted columns (sorted once, or block
    by block per chunk for pools past RANK_MAX_ELEMENTS); values equal the path that sorts every replicate."""
    import caloray.stats.ranked as ranked_module
    import caloray.validate.replicates as replicates
    from caloray.stats.ranked import LazyRankedPool, RankedPool
    from caloray.validate.replicates import pool_statistics

    if lazy:
        monkeypatch.setattr(replicates, "RANK_MAX_ELEMENTS", 100)
        monkeypatch.setattr(ranked_module, "SORT_ELEMENTS", 2 * 270)  # two columns per sorted block

    rng = np.random.default_rng(4)
    reference = torch.as_tensor(np.round(rng.normal(size=(150, 6)), 2))  # ties on purpose
    candidate = torch.as_tensor(np.round(rng.normal(0.2, 1.0, size=(120, 6)), 2))
    design = ExperimentDesign(batch_size=100, n_iter=6, n_slices=5, seed=3)
    context = design.context(6)
    ranked = prepare_pools(reference, candidate, statistic, context, design.batch_size)
    sorted_ = prepare_pools(reference, candidate, statistic, context)
    assert isinstance(ranked.ranked, LazyRankedPool if lazy else RankedPool) and sorted_.ranked is None
    assert ranked.projected == sorted_.projected == (statistic != "mean-ks")
    for kind in ("null", "alt"):
        np.testing.assert_allclose(pool_statistics(ranked, design, context, kind, range(6)),
                                   pool_statistics(sorted_, design, context, kind, range(6)), rtol=1e-10)
    null, alt = null_and_alternative(reference, candidate, statistic, design)  # the ranked path end to end
    np.testing.assert_allclose(null, pool_statistics(sorted_, design, context, "null", range(6)), rtol=1e-10)
    np.testing.assert_allclose(alt, pool_statistics(sorted_, design, context, "alt", range(6)), rtol=1e-10)


def test_ranked_cost_model_and_both_paths_give_the_same_nulls(monkeypatch) -> None:
    """The path is chosen by cost (issue 14: batch 4k of a ~40k-row pool sorted each replicate, 1.7× slower than
    counting); forcing either path gives the same null and alternative values, bit for bit, for KS."""
    import caloray.validate.replicates as replicates
    from caloray.validate.replicates import ranked_is_cheaper

    assert ranked_is_cheaper(40_000, 4_000) and ranked_is_cheaper(40_000, 16_000)
    assert not ranked_is_cheaper(1_000_000, 1_000) and not ranked_is_cheaper(2_000, 50)
    rng = np.random.default_rng(5)
    reference = np.round(rng.normal(size=(300, 4)), 2)  # ties on purpose
    candidate = np.round(rng.normal(0.1, 1.0, size=(260, 4)), 2)
    design = ExperimentDesign(batch_size=120, n_iter=40, seed=2)
    context = design.context(4)
    values = {}
    for path, cost in (("ranked", 1e9), ("sorted", 0.0)):
        monkeypatch.setattr(replicates, "SORT_COST_PER_LEVEL", cost)
        pools = prepare_pools(torch.as_tensor(reference), torch.as_tensor(candidate), "mean-ks", context, 120)
        assert (pools.ranked is not None) == (path == "ranked")
        values[path] = null_and_alternative(reference, candidate, "mean-ks", design)
    np.testing.assert_array_equal(values["ranked"][0], values["sorted"][0])
    np.testing.assert_array_equal(values["ranked"][1], values["sorted"][1])
