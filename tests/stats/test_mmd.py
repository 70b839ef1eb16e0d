"""Unbiased polynomial-kernel MMD against a direct O(n²) double loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.stats import mmd_polynomial


def _direct_unbiased_mmd(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + 1.0) ** 4

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2 * xy


@pytest.mark.parametrize(("n", "m"), [(20, 20), (17, 26)])
def test_mmd_matches_double_loop(n: int, m: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, n, 3))
    y = rng.normal(0.4, 1.2, size=(2, m, 3))
    got = mmd_polynomial(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    expected = [_direct_unbiased_mmd(x[r], y[r]) for r in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_mmd_row_blocks_do_not_change_the_value() -> None:
    rng = np.random.default_rng(1)
    x = torch.as_tensor(rng.normal(size=(3, 30, 4)))
    y = torch.as_tensor(rng.normal(size=(3, 25, 4)))
    torch.testing.assert_close(mmd_polynomial(x, y), mmd_polynomial(x, y, budget=3 * 30 * 4), rtol=1e-12, atol=0)


def test_mmd_is_unbiased_under_the_null() -> None:
    # The unbiased estimator averages to 0 for equal distributions (a biased V-statistic would not).
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.normal(size=(2000, 10, 2)))
    y = torch.as_tensor(rng.normal(size=(2000, 10, 2)))
    values = mmd_polynomial(x, y)
    assert abs(values.mean().item()) < 4 * values.std().item() / np.sqrt(2000)


def test_mmd_needs_two_rows() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        mmd_polynomial(torch.zeros(1, 3), torch.zeros(5, 3))
