"""KS and W1 from per-column pool sort orders agree with scipy on resampled rows, ties included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp, wasserstein_distance

from caloray.stats.ranked import ks_sup_ranked, ranked_pool, sort_pool, wasserstein1_ranked


def test_sort_pool_orders_ties_and_gaps() -> None:
    pooled = torch.tensor([[0.5, 3.0], [-0.0, 3.0], [0.0, 1.0], [2.0, 3.0], [0.5, -1.0]], dtype=torch.float64)
    pool = sort_pool(pooled)
    for column in range(2):  # the order sorts each column; which of two equal values comes first is free
        np.testing.assert_array_equal(pooled[pool.order[column], column], np.sort(pooled[:, column]))
    np.testing.assert_array_equal(pool.gaps, [[0.0, 0.5, 0.0, 1.5, 0.0], [2.0, 2.0, 0.0, 0.0, 0.0]])
    assert not torch.signbit(pool.gaps).any()  # the −0.0 → +0.0 step is a +0.0 gap
    np.testing.assert_array_equal(pool.last_of_value, [[False, True, False, True, True],
                                                       [True, True, False, False, True]])
    ks_only = sort_pool(pooled, with_gaps=False)
    assert ks_only.gaps is None
    with pytest.raises(ValueError, match="without gaps"):
        wasserstein1_ranked(ks_only, np.zeros((1, 2), int), np.ones((1, 2), int))
    assert sort_pool(torch.tensor([[1.0], [3.0], [2.0]])).last_of_value is None  # no ties: no mask


def test_sort_pool_and_counting_in_chunks(monkeypatch) -> None:
    import caloray.stats.ranked as ranked

    rng = np.random.default_rng(1)
    pooled = torch.as_tensor(np.round(rng.normal(size=(50, 7)), 1))
    whole = sort_pool(pooled)
    x_rows, y_rows = rng.integers(0, 50, (5, 20)), rng.integers(0, 50, (5, 30))
    ks, w1 = ks_sup_ranked(whole, x_rows, y_rows), wasserstein1_ranked(whole, x_rows, y_rows)
    monkeypatch.setattr(ranked, "SORT_ELEMENTS", 100)  # two columns per sorting chunk
    monkeypatch.setattr(ranked, "COUNT_ELEMENTS", 120)  # two replicates × one column per counting chunk
    chunked = sort_pool(pooled)
    np.testing.assert_array_equal(pooled.gather(0, whole.order.T), pooled.gather(0, chunked.order.T))
    np.testing.assert_array_equal(whole.gaps, chunked.gaps)
    np.testing.assert_array_equal(whole.last_of_value, chunked.last_of_value)
    np.testing.assert_array_equal(ks_sup_ranked(chunked, x_rows, y_rows), ks)
    np.testing.assert_allclose(wasserstein1_ranked(chunked, x_rows, y_rows), w1, rtol=1e-14)


@pytest.mark.parametrize(("n", "m"), [(40, 40), (37, 55)])
def test_counting_matches_scipy_on_resampled_rows(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    pool = np.concatenate([np.round(rng.normal(size=(120, 3)), 1), np.zeros((30, 3))])  # many ties
    ranked = ranked_pool(torch.as_tensor(pool[:100]), torch.as_tensor(pool[100:]))
    assert ranked.order.shape == (3, 150) and ranked.n_reference == 100
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
