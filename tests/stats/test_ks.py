"""Mean-KS and the row-wise KS/W1 kernels against scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp, wasserstein_distance

from caloray.stats import ks_per_dimension, ks_sup_rows, mean_ks, wasserstein1_rows


def _scipy_mean_ks(x: np.ndarray, y: np.ndarray) -> float:
    n, m = len(x), len(y)
    scale = np.sqrt(n * m / (n + m))
    return float(np.mean([scale * ks_2samp(x[:, i], y[:, i]).statistic for i in range(x.shape[1])]))


@pytest.mark.parametrize(("n", "m"), [(50, 50), (37, 64)])
def test_mean_ks_matches_scipy_per_dimension_with_ties(n: int, m: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, n, 6))
    y = rng.normal(0.2, 1.3, size=(3, m, 6))
    x[:, : n // 3, 0] = 0.0  # many exact zeros, as in sparse voxel data
    y[:, : m // 4, 0] = 0.0
    x[:, :, 1] = np.round(x[:, :, 1], 1)  # heavy ties inside and across samples
    y[:, :, 1] = np.round(y[:, :, 1], 1)
    got = mean_ks(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    expected = [_scipy_mean_ks(x[r], y[r]) for r in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.float64 and got.shape == (3,)


def test_ks_per_dimension_values_and_float32_input() -> None:
    rng = np.random.default_rng(2)
    x = rng.exponential(size=(80, 4)).astype(np.float32)
    y = rng.exponential(1.4, size=(60, 4)).astype(np.float32)
    got = ks_per_dimension(torch.as_tensor(x), torch.as_tensor(y))[0].numpy()
    scale = np.sqrt(80 * 60 / 140)
    expected = [scale * ks_2samp(x[:, i], y[:, i]).statistic for i in range(4)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_unbatched_input_is_one_replicate() -> None:
    rng = np.random.default_rng(3)
    x, y = torch.as_tensor(rng.normal(size=(40, 3))), torch.as_tensor(rng.normal(size=(30, 3)))
    single = mean_ks(x, y)
    assert single.shape == (1,)
    assert torch.equal(single, mean_ks(x.unsqueeze(0), y.unsqueeze(0)))


def test_ks_sup_extreme_cases() -> None:
    same = torch.tensor([[1.0, 2.0, 2.0, 3.0]])
    assert ks_sup_rows(same, same.clone()).item() == 0.0
    separated = ks_sup_rows(torch.tensor([[0.0, 1.0]]), torch.tensor([[5.0, 6.0, 7.0]]))
    assert separated.item() == 1.0
    all_tied = ks_sup_rows(torch.zeros(1, 5), torch.zeros(1, 3))
    assert all_tied.item() == 0.0  # identical constant samples: eCDFs coincide everywhere


@pytest.mark.parametrize(("n", "m"), [(40, 40), (33, 71)])
def test_wasserstein_rows_match_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(4)
    a = rng.gamma(2.0, size=(5, n))
    b = rng.gamma(2.5, size=(5, m))
    a[:, :5] = 0.0
    b[:, :3] = 0.0
    got = wasserstein1_rows(torch.as_tensor(a), torch.as_tensor(b)).numpy()
    expected = [wasserstein_distance(a[i], b[i]) for i in range(5)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_column_chunking_gives_the_same_values() -> None:
    from caloray.stats.ecdf import per_column

    rng = np.random.default_rng(5)
    x = torch.as_tensor(rng.normal(size=(2, 30, 7)))
    y = torch.as_tensor(rng.normal(size=(2, 20, 7)))
    whole = per_column(x, y, ks_sup_rows)
    chunked = per_column(x, y, ks_sup_rows, budget=50 * 2 * 2)  # two columns per chunk
    assert torch.equal(whole, chunked)


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="disagree"):
        mean_ks(torch.zeros(2, 5, 3), torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match="disagree"):
        mean_ks(torch.zeros(2, 5, 3), torch.zeros(3, 5, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_signed_zeros_and_negatives_in_both_sort_paths(dtype: type) -> None:
    # float32 goes through the uint64 key sort, float64 through the argsort: both must be exact.
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(size=(3, 70, 2)), 1).astype(dtype)
    y = np.round(rng.normal(0.2, 1.0, size=(3, 55, 2)), 1).astype(dtype)
    x[:, :10, 1] = -0.0
    y[:, :10, 1] = 0.0
    got = ks_per_dimension(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    scale = np.sqrt(70 * 55 / 125)
    expected = [[scale * ks_2samp(x[r, :, i], y[r, :, i]).statistic for i in range(2)] for r in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # −0.0 and +0.0 tie: two samples differing only in the sign of zero have KS = 0.
    zeros = torch.zeros(1, 4, 1, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    assert mean_ks(zeros, -zeros).item() == 0.0


def test_torch_sort_path_used_off_cpu_agrees_with_the_numpy_path() -> None:
    # The torch merge runs on GPUs; run it here on CPU tensors against the numpy path.
    from caloray.stats.ecdf import _ks_sup_numpy, _ks_sup_torch

    rng = np.random.default_rng(10)
    a = np.round(rng.normal(size=(6, 50)), 1)
    b = np.round(rng.normal(0.3, 1.0, size=(6, 35)), 1)
    a[:, :5] = -0.0
    b[:, :5] = 0.0
    for dtype in (np.float32, np.float64):
        expected = _ks_sup_numpy(a.astype(dtype), b.astype(dtype))
        got = _ks_sup_torch(torch.as_tensor(a.astype(dtype)), torch.as_tensor(b.astype(dtype)))
        np.testing.assert_array_equal(got.numpy(), expected)


def test_float64_values_one_ulp_apart_are_distinct() -> None:
    # The fast float64 key drops the last bit; rows where that would merge distinct values must not.
    one, next_up = 1.0, float(np.nextafter(1.0, 2.0))
    x = torch.tensor([[[one], [3.0]], [[one], [3.0]]], dtype=torch.float64)
    y = torch.tensor([[[next_up], [3.0]], [[one], [3.0]]], dtype=torch.float64)
    # Replicate 0: F_x − G_y = 1/2 on [1, next_up); replicate 1: identical samples.
    np.testing.assert_array_equal(ks_per_dimension(x, y).numpy()[:, 0], [0.5, 0.0])


@pytest.mark.parametrize(("n", "m"), [(300, 300), (240, 410)])
def test_sorted_key_kernel_matches_the_argsort_kernel_on_float32_and_float64(n: int, m: int) -> None:
    # The one-sort kernel (float32 keys in the high word, int32 running sums) against the exact float64 argsort,
    # on rows with and without ties, signed zeros included.
    from caloray.stats.ecdf import _ks_sup_argsort, _ks_sup_numpy

    rng = np.random.default_rng(11)
    a = rng.normal(size=(8, n))
    b = rng.normal(0.1, 1.2, size=(8, m))
    a[:4], b[:4] = np.round(a[:4], 1), np.round(b[:4], 1)  # rows 0–3 tied, rows 4–7 continuous
    a[:2, :20], b[:2, :20] = -0.0, 0.0
    for dtype in (np.float32, np.float64):
        a_, b_ = a.astype(dtype), b.astype(dtype)
        np.testing.assert_array_equal(_ks_sup_numpy(a_, b_), _ks_sup_argsort(a_, b_))


def test_ks_running_sums_past_int32_match_scipy() -> None:
    # n·m/gcd ≥ 2^31 switches the running sums to int64 (coprime sizes of 50k rows); scipy computes it directly.
    rng = np.random.default_rng(12)
    n, m = 50_000, 49_999
    assert n * m // np.gcd(n, m) >= 2**31
    a = rng.normal(size=n).astype(np.float32)
    b = rng.normal(0.01, 1.0, size=m).astype(np.float32)
    got = ks_sup_rows(torch.as_tensor(a[None]), torch.as_tensor(b[None])).item()
    assert got == pytest.approx(ks_2samp(a, b).statistic, rel=1e-12)
