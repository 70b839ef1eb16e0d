"""The statistic registry and the numpy wrappers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.stats import STATISTICS, StatisticContext, get_statistic, mean_ks, sliced_wasserstein
from caloray.stats import numpy_api as api

MU = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)


def log_standard_normal(y: torch.Tensor) -> torch.Tensor:
    return -0.5 * (y**2).sum(-1)


def log_shifted_normal(y: torch.Tensor) -> torch.Tensor:
    return log_standard_normal(y - MU)


NAMES = ["mean-ks", "sks", "swd", "mmd", "fgd", "fgd-inf", "llr"]


def test_registry_has_every_statistic_of_the_spec() -> None:
    assert sorted(STATISTICS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_uniform_signature_and_growth_with_discrepancy(name: str) -> None:
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(3, 200, 3)))
    same = torch.as_tensor(rng.normal(size=(3, 200, 3)))
    shifted = torch.as_tensor(rng.normal(size=(3, 200, 3))) * 1.5 + MU  # wider and shifted
    context = StatisticContext.for_dimension(3, 16, seed=0, log_p=log_standard_normal, log_q=log_shifted_normal)
    fn = get_statistic(name)
    near, far = fn(x, same, context), fn(x, shifted, context)
    assert near.shape == (3,) and near.dtype == torch.float64
    assert (far > near).all()


def test_unknown_and_underspecified_statistics_fail_clearly() -> None:
    with pytest.raises(ValueError, match="valid"):
        get_statistic("ks-mean")
    x = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="directions"):
        STATISTICS["sks"](x, x, StatisticContext())
    with pytest.raises(ValueError, match="densities"):
        STATISTICS["llr"](x, x, StatisticContext())


def test_numpy_wrappers_agree_with_torch() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(35, 3))
    theta = api.random_directions(3, 5, seed=2)
    assert isinstance(api.mean_ks(x, y), np.ndarray)
    np.testing.assert_array_equal(api.mean_ks(x, y), mean_ks(torch.as_tensor(x), torch.as_tensor(y)).numpy())
    np.testing.assert_array_equal(
        api.sliced_wasserstein(x, y, theta),
        sliced_wasserstein(torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(theta)).numpy(),
    )
    for fn in (api.mmd_polynomial, api.fgd, api.fgd_inf):
        assert fn(x, y).shape == (1,)
    assert api.sliced_ks(x, y, theta).shape == (1,)
    assert api.ks_per_dimension(x, y).shape == (1, 3)
