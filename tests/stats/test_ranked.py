"""Counting KS and W1 over per-column pool ranks agree with scipy on resampled rows, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp, wasserstein_distance

from caloray.stats.ranked import ks_sup_ranked, rank_pool, ranked_pool, wasserstein1_ranked


def test_rank_pool_dense_ranks_ties_and_gaps() -> None:
    pooled = np.array([[0.5, 3.0], [-0.0, 3.0], [0.0, 1.0], [2.0, 3.0], [0.5, -1.0]])
    ranks, gaps = rank_pool(pooled)
    np.testing.assert_array_equal(ranks[:, 0], [1, 0, 0, 2, 1])  # −0.0 and +0.0 tie
    np.testing.assert_array_equal(ranks[:, 1], [2, 2, 1, 2, 0])
    assert ranks.dtype == np.int32 and gaps.shape == (2, 3)
    np.testing.assert_array_equal(gaps, [[0.5, 1.5, 0.0], [2.0, 2.0, 0.0]])
    only_ranks, no_gaps = rank_pool(pooled, with_gaps=False)
    np.testing.assert_array_equal(only_ranks, ranks)
    assert no_gaps.shape == (2, 0)


def test_rank_pool_in_column_chunks(monkeypatch) -> None:
    import caloray.stats.ranked as ranked

    rng = np.random.default_rng(1)
    pooled = np.round(rng.normal(size=(50, 7)), 1)
    whole = rank_pool(pooled)
    monkeypatch.setattr(ranked, "RANK_ELEMENTS", 100)  # two columns per chunk
    chunked = rank_pool(pooled)
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])


@pytest.mark.parametrize(("n", "m"), [(40, 40), (37, 55)])
def test_counting_matches_scipy_on_resampled_rows(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    pool = np.concatenate([np.round(rng.normal(size=(120, 3)), 1), np.zeros((30, 3))])  # many ties
    ranked = ranked_pool(torch.as_tensor(pool[:100]), torch.as_tensor(pool[100:]))
    assert ranked.columns.shape == (3, 150) and ranked.n_reference == 100
    replicates = 4
    x_rows = rng.integers(0, len(pool), (replicates, n))
    y_rows = rng.integers(0, len(pool), (replicates, m))
    ks = ks_sup_ranked(ranked, x_rows, y_rows).numpy()
    w1 = wasserstein1_ranked(ranked, x_rows, y_rows).numpy()
    assert ks.shape == w1.shape == (replicates, 3)
    for r in range(replicates):
        for column in range(3):
            x, y = pool[x_rows[r], column], pool[y_rows[r], column]
            assert ks[r, column] == pytest.approx(ks_2samp(x, y).statistic, rel=1e-12)
            assert w1[r, column] == pytest.approx(wasserstein_distance(x, y), rel=1e-10, abs=1e-14)
