"""Calibration: with reference and candidate from the same distribution, alternative replicates are
distributed like null replicates, so p-values are uniform and rejection rates match α.

Each statistic gets 2000 null and 2000 alternative replicates of 64 rows (d = 3), computed batched.
The check is two-sided and can fail: the negative control below feeds it a miscalibrated null.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from caloray.validate import ExperimentDesign, null_and_alternative, p_value
from caloray.validate.summary import ALPHAS

N_ITER, BATCH, D = 2000, 64, 3
RNG = np.random.default_rng(11)
REFERENCE = RNG.gamma(3.0, size=(100_000, D))  # skewed, so nothing relies on Gaussianity
CANDIDATE = RNG.gamma(3.0, size=(100_000, D))


def log_gamma3(y: torch.Tensor) -> torch.Tensor:
    """log density of independent Gamma(3, 1) coordinates."""
    return (2 * torch.log(y) - y - math.log(2.0)).sum(-1)


def log_gamma3_scaled(y: torch.Tensor) -> torch.Tensor:
    """log density of independent Gamma(3, 1.2) coordinates (a wrong candidate density for LLR)."""
    return (2 * torch.log(y) - y / 1.2 - math.log(2.0 * 1.2**3)).sum(-1)


def calibration_problems(null: np.ndarray, alt: np.ndarray) -> list[str]:
    """Deviations from calibration beyond statistical error (empty list: calibrated)."""
    problems = []
    ks = ks_2samp(null, alt)
    if ks.pvalue < 1e-3:
        problems.append(f"null and alternative differ (KS p = {ks.pvalue:.2g})")
    p_values = np.array([p_value(null, a) for a in alt])
    for alpha in ALPHAS:
        rate = float(np.mean(p_values <= alpha))
        # Binomial error of the alternative replicates plus that of the null's quantile estimate.
        sd = math.sqrt(alpha * (1 - alpha) * (1 / alt.size + 1 / null.size))
        if abs(rate - alpha) > 4 * sd:
            problems.append(f"rejection rate {rate:.4f} at alpha={alpha} (±{4 * sd:.4f})")
    return problems


@pytest.mark.parametrize("statistic", ["mean-ks", "sks", "swd", "mmd", "fgd", "fgd-inf", "llr"])
@pytest.mark.parametrize("mode", ["bootstrap", "permutation"])
def test_p_values_are_calibrated(statistic: str, mode: str) -> None:
    design = ExperimentDesign(batch_size=BATCH, n_iter=N_ITER, n_slices=16, seed=5, mode=mode)  # type: ignore[arg-type]
    context = design.context(D, log_p=log_gamma3, log_q=log_gamma3_scaled)
    null, alt = null_and_alternative(REFERENCE, CANDIDATE, statistic, design, context)
    assert calibration_problems(null, alt) == []


def test_the_calibration_check_flags_a_miscalibrated_null() -> None:
    # Negative control: a null built from batches 4× larger is too narrow for SWD at batch 64.
    small = ExperimentDesign(batch_size=BATCH, n_iter=N_ITER, n_slices=16, seed=5)
    large = ExperimentDesign(batch_size=4 * BATCH, n_iter=N_ITER, n_slices=16, seed=5)
    null_large, _ = null_and_alternative(REFERENCE, CANDIDATE, "swd", large, small.context(D))
    _, alt_small = null_and_alternative(REFERENCE, CANDIDATE, "swd", small)
    assert calibration_problems(null_large, alt_small) != []
