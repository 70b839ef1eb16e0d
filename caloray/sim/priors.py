"""Incident-energy priors: fixed list, uniform, log-uniform and the dataset-1 powers-of-two ladder (MeV)."""

from __future__ import annotations

import numpy as np

from caloray.sim.config import SimConfig

#: CaloChallenge dataset 1 energies: 2^8 … 2^22 MeV (256 MeV … 4.19 TeV), 15 values.
DS1_LADDER_MEV = 2.0 ** np.arange(8, 23)


def sample_incident_energies(
    config: SimConfig,
    rng: np.random.Generator,
    n: int,
    start: int = 0,
) -> np.ndarray:
    """Incident energies (n,) in MeV for global shower indices [start, start + n).

    "fixed" cycles through `energies_mev` by global index (equal shares, no randomness); "uniform" and
    "log-uniform" draw on [energy_min_mev, energy_max_mev]; "ds1-ladder" draws each of the 15 ladder
    energies with equal probability.
    """
    if config.prior == "fixed":
        energies = np.asarray(config.energies_mev, dtype=np.float64)
        return energies[(start + np.arange(n)) % len(energies)]
    if config.prior == "uniform":
        return rng.uniform(config.energy_min_mev, config.energy_max_mev, n)
    if config.prior == "log-uniform":
        return np.exp(rng.uniform(np.log(config.energy_min_mev), np.log(config.energy_max_mev), n))
    if config.prior == "ds1-ladder":
        return DS1_LADDER_MEV[rng.integers(0, len(DS1_LADDER_MEV), n)]
    raise ValueError(f"unknown prior {config.prior!r}")
