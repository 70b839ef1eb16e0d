"""Replicate row sets: deterministic per (seed, replicate), correct pools, both modes."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.validate import ExperimentDesign, chunk_rows, held_out_rows, replicate_rows
from caloray.validate.sampling import permutation_orders


def test_replicate_rows_depend_only_on_seed_and_index() -> None:
    design = ExperimentDesign(batch_size=10, n_iter=20, seed=3)
    x_chunk, y_chunk = chunk_rows("null", [7, 2, 11], design, 1000, 800)
    for row, index in enumerate([7, 2, 11]):
        x_one, y_one = replicate_rows("null", index, design, 1000, 800)
        np.testing.assert_array_equal(x_chunk[row], x_one)
        np.testing.assert_array_equal(y_chunk[row], y_one)
    other_seed = ExperimentDesign(batch_size=10, n_iter=20, seed=4)
    assert not np.array_equal(replicate_rows("null", 7, other_seed, 1000, 800)[0], x_chunk[0])
    assert not np.array_equal(x_chunk[0], x_chunk[1])


def test_bootstrap_null_draws_disjoint_reference_rows_when_possible() -> None:
    design = ExperimentDesign(batch_size=50, n_iter=5, seed=0)
    x, y = replicate_rows("null", 0, design, 100, 1000)
    assert x.max() < 100 and y.max() < 100  # both from the reference
    assert len(np.union1d(x, y)) == 100  # 2·50 distinct rows: disjoint, without replacement


def test_bootstrap_resamples_with_replacement_when_the_reference_is_small() -> None:
    design = ExperimentDesign(batch_size=50, n_iter=5, seed=0)
    x, y = replicate_rows("null", 0, design, 60, 1000)
    assert x.max() < 60 and y.max() < 60
    assert len(np.unique(np.concatenate([x, y]))) < 100  # repeats are unavoidable


def test_alternative_compares_reference_with_candidate() -> None:
    design = ExperimentDesign(batch_size=20, n_iter=5, seed=1)
    x, y = replicate_rows("alt", 4, design, 100, 300)
    assert x.max() < 100 and len(np.unique(x)) == 20
    assert y.min() >= 100 and y.max() < 400 and len(np.unique(y)) == 20


def test_permutation_null_splits_the_pooled_alternative_rows() -> None:
    design = ExperimentDesign(batch_size=30, n_iter=5, seed=2, mode="permutation")
    x_alt, y_alt = replicate_rows("alt", 3, design, 500, 500)
    x_null, y_null = replicate_rows("null", 3, design, 500, 500)
    np.testing.assert_array_equal(np.sort(np.concatenate([x_null, y_null])), np.sort(np.concatenate([x_alt, y_alt])))
    assert (x_null < 500).any() and (x_null >= 500).any()  # halves mix reference and candidate rows


def test_calibrated_test_permutes_exactly_the_held_out_rows() -> None:
    design = ExperimentDesign(batch_size=30, n_iter=50, seed=2)
    x_held, y_held = held_out_rows(design, 500, 400)
    assert len(np.unique(x_held)) == 30 and x_held.max() < 500  # distinct reference rows
    assert len(np.unique(y_held)) == 30 and y_held.min() >= 500  # distinct candidate rows
    pooled = np.sort(np.concatenate([x_held, y_held]))
    x_chunk, y_chunk = chunk_rows("test", range(50), design, 500, 400)
    assert x_chunk.shape == y_chunk.shape == (50, 30)
    for i in (0, 17, 49):
        x, y = replicate_rows("test", i, design, 500, 400)
        np.testing.assert_array_equal(x, x_chunk[i])  # replicate i is the same in any chunk
        np.testing.assert_array_equal(np.sort(np.concatenate([x, y])), pooled)
    # a smaller sample caps the held-out experiment's size
    assert held_out_rows(design, 500, 12)[0].size == 12
    with pytest.raises(ValueError, match="≥ 2 rows"):
        held_out_rows(design, 500, 1)


def test_permutation_orders_are_uniform_and_index_determined() -> None:
    orders = permutation_orders(3, 4, range(12_000), 4)
    assert (np.sort(orders, axis=1) == np.arange(4)).all()  # permutations
    counts = np.unique(orders, axis=0, return_counts=True)[1]
    assert counts.size == 24  # all 4! orders occur …
    expected = orders.shape[0] / 24
    assert ((counts - expected) ** 2 / expected).sum() < 49.7  # … equally often (χ² with 23 dof, p ≈ 0.001)
    np.testing.assert_array_equal(permutation_orders(3, 4, [7, 5000], 4), orders[[7, 5000]])
    assert not np.array_equal(permutation_orders(4, 4, range(50), 4), orders[:50])  # the seed matters


def test_design_validation() -> None:
    with pytest.raises(ValueError, match="mode"):
        ExperimentDesign(batch_size=10, n_iter=5, mode="jackknife")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        ExperimentDesign(batch_size=1, n_iter=5)
    with pytest.raises(ValueError, match="n_iter"):
        ExperimentDesign(batch_size=10, n_iter=0)
