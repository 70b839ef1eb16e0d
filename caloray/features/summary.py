"""Response summary per incident-energy bin: mean, relative resolution and skewness of E_dep/E_inc."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats


def response_table(incident_energies_mev: np.ndarray, response: np.ndarray, n_bins: int = 6) -> list[dict]:
    """Rows per log-spaced E_inc bin: showers, mean and σ/mean of E_dep/E_inc, sample skewness."""
    energies_gev = np.asarray(incident_energies_mev, dtype=np.float64) / 1e3
    lo, hi = energies_gev.min(), energies_gev.max()
    edges = np.geomspace(lo, hi * (1 + 1e-9), n_bins + 1) if hi > lo * 1.0001 else np.array([lo, hi * 1.0001])
    rows = []
    for a, b in itertools.pairwise(edges):
        sel = response[(energies_gev >= a) & (energies_gev < b)]
        if sel.size < 3:
            continue
        mean = float(sel.mean())
        rows.append({
            "E_inc [GeV]": f"{a:.3g}–{b:.3g}",
            "showers": int(sel.size),
            "<E_dep/E_inc>": mean,
            "sigma/mean": float(sel.std(ddof=1) / mean),
            "skewness": float(stats.skew(sel)),
        })
    return rows
