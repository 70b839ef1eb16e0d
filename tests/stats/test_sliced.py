"""Directions, projections, sliced KS and sliced Wasserstein against scipy on the projections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp, wasserstein_distance

from caloray.stats import project, random_directions, sliced_ks, sliced_wasserstein


def test_directions_are_unit_reproducible_and_seed_dependent() -> None:
    theta = random_directions(7, 11, seed=3)
    assert theta.shape == (7, 11) and theta.dtype == torch.float64
    torch.testing.assert_close(theta.norm(dim=0), torch.ones(11, dtype=torch.float64))
    assert torch.equal(theta, random_directions(7, 11, seed=3))
    assert not torch.allclose(theta, random_directions(7, 11, seed=4))


def test_directions_are_uniform_on_the_sphere() -> None:
    d, k = 5, 20000
    theta = random_directions(d, k, seed=0)
    # Uniform on S^{d-1}: E[θ] = 0 and E[θθᵀ] = I/d; each component's sd is ~1/sqrt(d k) resp. ~0.001.
    assert theta.mean(dim=1).abs().max() < 5 / np.sqrt(d * k)
    second = theta @ theta.T / k
    assert (second - torch.eye(d, dtype=torch.float64) / d).abs().max() < 0.01
    # The first coordinate of a uniform unit vector in d=5 has |θ_1| < 0.5 with probability 0.6875.
    frac = (theta[0].abs() < 0.5).double().mean().item()
    assert abs(frac - 0.6875) < 0.015


def test_project_is_a_matrix_product() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 4))
    theta = random_directions(4, 3, seed=1)
    got = project(torch.as_tensor(x), theta).numpy()
    np.testing.assert_allclose(got, x @ theta.numpy(), rtol=1e-12)


def test_float32_projection_keeps_the_statistics() -> None:
    # float32 samples are projected by one float32 product over all replicates; at d = 2000 the rounding
    # moves projections by ~1e-6 relative, far below what KS ranks or W1 resolve.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 300, 2000)).astype(np.float32)
    y = (rng.normal(size=(3, 300, 2000)) + 0.02).astype(np.float32)
    theta = random_directions(2000, 20, seed=1)
    exact = x.astype(np.float64) @ theta.numpy()
    got = project(torch.as_tensor(x), theta).numpy()
    np.testing.assert_allclose(got, exact, rtol=1e-4, atol=1e-4 * np.abs(exact).max())
    x64, y64 = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    torch.testing.assert_close(sliced_ks(torch.as_tensor(x), torch.as_tensor(y), theta), sliced_ks(x64, y64, theta),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sliced_wasserstein(torch.as_tensor(x), torch.as_tensor(y), theta),
                               sliced_wasserstein(x64, y64, theta), rtol=1e-5, atol=0)


@pytest.mark.parametrize(("n", "m"), [(45, 45), (45, 70)])
def test_sliced_ks_matches_scipy_on_projections(n: int, m: int) -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, n, 5))
    y = rng.standard_t(4, size=(2, m, 5))
    theta = random_directions(5, 9, seed=2)
    got = sliced_ks(torch.as_tensor(x), torch.as_tensor(y), theta).numpy()
    scale = np.sqrt(n * m / (n + m))
    th = theta.numpy()
    expected = [
        np.mean([scale * ks_2samp((x[r] @ th)[:, k], (y[r] @ th)[:, k]).statistic for k in range(9)]) for r in range(2)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize(("n", "m"), [(45, 45), (45, 70)])
def test_sliced_wasserstein_matches_scipy_on_projections(n: int, m: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, n, 5))
    y = rng.normal(0.3, 0.8, size=(2, m, 5))
    theta = random_directions(5, 9, seed=2)
    got = sliced_wasserstein(torch.as_tensor(x), torch.as_tensor(y), theta).numpy()
    th = theta.numpy()
    expected = [
        np.mean([wasserstein_distance((x[r] @ th)[:, k], (y[r] @ th)[:, k]) for k in range(9)]) for r in range(2)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_swd_scales_with_the_units_and_ks_does_not() -> None:
    rng = np.random.default_rng(8)
    x = torch.as_tensor(rng.normal(size=(40, 3)))
    y = torch.as_tensor(rng.normal(1.0, 1.0, size=(40, 3)))
    theta = random_directions(3, 6, seed=0)
    torch.testing.assert_close(sliced_wasserstein(10 * x, 10 * y, theta), 10 * sliced_wasserstein(x, y, theta))
    torch.testing.assert_close(sliced_ks(10 * x, 10 * y, theta), sliced_ks(x, y, theta))


def test_wrong_direction_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="directions"):
        sliced_ks(torch.zeros(5, 3), torch.zeros(5, 3), torch.zeros(4, 2))


def test_float32_projections_give_scipy_statistics_of_those_projections() -> None:
    # float32 samples keep their float32 projections (no float64 copy): SKS and SWD are then the exact KS and W1
    # of those projected values, as scipy computes them column by column.
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 120, 30)).astype(np.float32)
    y = rng.standard_t(5, size=(2, 90, 30)).astype(np.float32)
    theta = random_directions(30, 7, seed=4)
    px = project(torch.as_tensor(x), theta, keep_float32=True).numpy()
    py = project(torch.as_tensor(y), theta, keep_float32=True).numpy()
    assert px.dtype == np.float32 and px.shape == (2, 120, 7)
    scale = np.sqrt(120 * 90 / 210)
    ks = [np.mean([scale * ks_2samp(px[r, :, k], py[r, :, k]).statistic for k in range(7)]) for r in range(2)]
    w1 = [np.mean([wasserstein_distance(px[r, :, k], py[r, :, k]) for k in range(7)]) for r in range(2)]
    np.testing.assert_allclose(sliced_ks(torch.as_tensor(x), torch.as_tensor(y), theta).numpy(), ks, rtol=1e-12)
    np.testing.assert_allclose(sliced_wasserstein(torch.as_tensor(x), torch.as_tensor(y), theta).numpy(), w1,
                               rtol=1e-12)


def test_float32_and_float64_kernels_agree_bit_for_bit_on_the_same_projections() -> None:
    # The float32 sort path and the float64 one (uint64 keys with the ulp check) on identical values.
    from caloray.stats.ecdf import ks_sup_rows, per_column, wasserstein1_rows

    rng = np.random.default_rng(10)
    x = torch.as_tensor(rng.normal(size=(3, 200, 50)).astype(np.float32))
    y = torch.as_tensor(rng.normal(0.05, 1.0, size=(3, 200, 50)).astype(np.float32))
    theta = random_directions(50, 12, seed=5)
    px, py = project(x, theta, keep_float32=True), project(y, theta, keep_float32=True)
    for row_fn in (ks_sup_rows, wasserstein1_rows):
        assert torch.equal(per_column(px, py, row_fn), per_column(px.double(), py.double(), row_fn))


def test_float32_product_agrees_with_the_plain_matmul_and_falls_back_without_onednn(monkeypatch) -> None:
    from caloray.stats import projections

    rng = np.random.default_rng(11)
    a = torch.as_tensor(rng.normal(size=(257, 700)).astype(np.float32))
    theta = random_directions(700, 13, seed=6)
    exact = a.double() @ theta
    fast = projections.float32_product(a, theta.float())
    assert fast.dtype == torch.float32 and fast.shape == (257, 13)
    # float32 rounding of 700-term sums of O(1) products: ~1e-7·sqrt(700) of the sums' scale
    torch.testing.assert_close(fast.double(), exact, rtol=0, atol=1e-5)
    monkeypatch.setattr(projections, "_ONEDNN_LINEAR", None)
    torch.testing.assert_close(projections.float32_product(a, theta.float()), a @ theta.float(), rtol=0, atol=0)
