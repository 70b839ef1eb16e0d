"""Power: grows with batch_size for a mean shift; sliced tests lose power on sparse discrepancies.

Measured numbers (seed as below) are quoted in the docstrings; assertions leave statistical room.
"""

from __future__ import annotations

import numpy as np
import pytest

from caloray.validate import ExperimentDesign, run_test


@pytest.mark.parametrize("statistic", ["mean-ks", "swd"])
def test_power_rises_with_batch_size_for_a_mean_shift(statistic: str) -> None:
    """Shift 0.15 in all 4 coordinates. Measured power(α=0.05) at batch 32/128/512:
    mean-KS 0.06 / 0.28 / 0.93, SWD 0.08 / 0.40 / 0.97."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50_000, 4))
    candidate = rng.normal(size=(50_000, 4)) + 0.15
    powers = [
        run_test(
            reference, candidate, statistic, ExperimentDesign(batch_size=b, n_iter=300, n_slices=16, seed=1)
        ).power_05
        for b in (32, 128, 512)
    ]
    assert powers[0] < 0.2
    assert powers[1] > powers[0] + 0.1
    assert powers[2] > max(powers[1] + 0.3, 0.8)


def test_sliced_ks_loses_power_on_a_sparse_discrepancy() -> None:
    """Only k = 2 of D = 16 coordinates differ: they become bimodal (±0.95 plus narrow noise) with the
    same mean and variance. Each marginal KS sees the change fully; a random projection mixes the two
    coordinates with 14 unchanged ones (weight ~ sqrt(k/D)) and looks Gaussian again.
    Measured at batch 512: power(0.05) mean-KS 0.995, SKS 0.055 (i.e. at the size of the test)."""
    rng = np.random.default_rng(0)
    d, k = 16, 2
    reference = rng.normal(size=(20_000, d))
    candidate = rng.normal(size=(20_000, d))
    for j in range(k):
        candidate[:, j] = rng.choice([-0.95, 0.95], size=20_000) + rng.normal(0, np.sqrt(1 - 0.95**2), 20_000)
    design = ExperimentDesign(batch_size=512, n_iter=200, n_slices=32, seed=1)
    mean_ks = run_test(reference, candidate, "mean-ks", design)
    sliced = run_test(reference, candidate, "sks", design)
    assert mean_ks.power_05 > 0.9
    assert sliced.power_05 < 0.2
    assert mean_ks.sigma > sliced.sigma + 1.0


def test_sliced_signal_is_diluted_by_dimension() -> None:
    """One coordinate shifted by 0.5; the projected shift is 0.5·|θ_1| ~ 0.5·sqrt(1/D).
    Measured SKS power(0.05) at batch 256: D = 4 → 0.995, D = 64 → 0.39."""
    rng = np.random.default_rng(0)
    powers = {}
    for d in (4, 64):
        reference = rng.normal(size=(20_000, d))
        candidate = rng.normal(size=(20_000, d))
        candidate[:, 0] += 0.5
        design = ExperimentDesign(batch_size=256, n_iter=200, n_slices=32, seed=1)
        powers[d] = run_test(reference, candidate, "sks", design).power_05
    assert powers[4] > 0.9
    assert powers[64] < powers[4] - 0.3
