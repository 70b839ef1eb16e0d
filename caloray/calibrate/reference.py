"""A slow, independent per-shower MLE (scipy) used to check the batched engine and to benchmark it."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq, minimize_scalar

from caloray.calibrate.mle import LogLikelihood


def reference_mle(log_likelihood: LogLikelihood, n_showers: int, z_min: float, z_max: float,
                  n_scan: int = 96, xtol: float = 1e-9) -> np.ndarray:
    """Per shower: scan, bounded scalar minimization of −ℓ, then Brent roots of Δ(−2ℓ) = 1.

    Returns (n_showers, 3): E_pred, z_lo, z_hi (NaN where a crossing is outside the range).
    One shower and one candidate energy per model call, as a straightforward script would do.
    """
    grid = np.geomspace(z_min, z_max, n_scan)
    out = np.full((n_showers, 3), np.nan)
    for b in range(n_showers):
        rows = torch.tensor([b])

        def nll(z: float, rows: torch.Tensor = rows) -> float:
            value = float(log_likelihood(torch.tensor([[z]], dtype=torch.float64), rows)[0, 0])
            return -value if math.isfinite(value) else math.inf

        scan = np.array([nll(z) for z in grid])
        k = int(np.argmin(scan))
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, n_scan - 1)]
        best = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": xtol * grid[k]})
        e_pred, nll_min = float(best.x), float(best.fun)
        if scan[k] < nll_min:
            e_pred, nll_min = float(grid[k]), float(scan[k])
        out[b, 0] = e_pred

        def delta(z: float, nll_min: float = nll_min) -> float:
            return 2.0 * (nll(z) - nll_min) - 1.0

        below = [z for z, s in zip(grid, scan, strict=True) if z < e_pred and 2 * (s - nll_min) >= 1]
        above = [z for z, s in zip(grid, scan, strict=True) if z > e_pred and 2 * (s - nll_min) >= 1]
        if below:
            out[b, 1] = brentq(delta, below[-1], e_pred, xtol=xtol * e_pred)
        if above:
            out[b, 2] = brentq(delta, e_pred, above[0], xtol=xtol * e_pred)
    return out
