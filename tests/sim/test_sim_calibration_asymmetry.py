"""The calibration paper's Fig. 6/7 behaviour on simulated π⁺ (ecal-hcal): a maximum-likelihood estimate
of E_inc from E_dep has a 68% interval that is wider below the estimate than above (Δ_L/Δ_U > 1 for most
showers), because p(E_dep | E_inc) has a tail to high E_dep. Likelihood: Gaussian KDE of the response on a
2.5 GeV grid, cubic spline in E_inc, interval from −2 Δlog L = 1.

This E_dep-only likelihood is a coarse proxy: the KDE noise of the 29 grid points shifts every shower's interval
together, so the fraction swings with the seed (with the default physics, 4000 showers per grid point, 1500 at
50 GeV: 0.56, 0.64, 0.64 for seeds 0–2; the former κ = 0 physics gave 0.65, 0.65, 0.36). The flow-likelihood
measurement that sets the default is in caloray/sim/config.py (`invisible_skew_shape`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import interpolate, stats

from caloray.sim import SimConfig, simulate_showers


@pytest.mark.slow
def test_mle_interval_asymmetry_is_mostly_above_one() -> None:
    config = SimConfig(geometry="ecal-hcal", particle="pion")
    rng = np.random.default_rng(0)
    grid = np.arange(20e3, 92.5e3, 2.5e3)
    kdes = []
    for energy in grid:
        response = simulate_showers(config, np.full(4_000, energy), rng).sum(1, dtype=np.float64) / energy
        kdes.append(stats.gaussian_kde(response))
    e_dep = simulate_showers(config, np.full(1_500, 50e3), rng).sum(1, dtype=np.float64)
    columns = [np.log(kde(e_dep / e) + 1e-300) - np.log(e) for kde, e in zip(kdes, grid, strict=True)]
    log_p = np.stack(columns, axis=1)
    fine = np.linspace(grid[0], grid[-1], 2_000)
    ratios = []
    for row in log_p:
        curve = interpolate.CubicSpline(grid, row)(fine)
        best = int(np.argmax(curve))
        m2 = -2 * (curve - curve[best])
        below, above = np.flatnonzero(m2[:best] >= 1), np.flatnonzero(m2[best:] >= 1)
        if below.size and above.size:
            ratios.append((fine[best] - fine[below[-1]]) / (fine[best + above[0]] - fine[best]))
    ratios = np.asarray(ratios)
    assert len(ratios) > 1_200
    assert (ratios > 1).mean() > 0.5  # measured 0.559 (seed 0)
    assert np.median(ratios) > 1.0  # measured 1.035
