"""Simulate showers: incident energies → spots → voxel energies (MeV), in memory-bounded chunks.

`simulate_shard(config, i)` is deterministic: it seeds `np.random.default_rng([seed, i])`, so any shard
can be (re)made on any worker in any order, and shards are statistically independent streams.
These are parametrized showers, not Geant4.
"""

from __future__ import annotations

import numpy as np

from caloray.geometry import Geometry
from caloray.sim import deposit, hadronic
from caloray.sim.config import SimConfig
from caloray.sim.priors import sample_incident_energies
from caloray.sim.spots import Spots, em_spots, hadron_spots, spot_cap, spot_counts, track_spots


def _em_chunk_spots(config: SimConfig, energies_mev: np.ndarray, rng: np.random.Generator) -> Spots:
    geometry, physics = config.geometry_obj, config.physics
    n_spots = spot_counts(energies_mev, energies_mev, spot_cap(geometry, physics), physics)
    start = np.zeros(len(energies_mev))
    return em_spots(geometry, energies_mev, start, n_spots, config.resolved_particle, physics, rng)


def _pion_chunk_spots(config: SimConfig, energies_mev: np.ndarray, rng: np.random.Generator) -> Spots:
    """π±: MIP track to the first interaction t_0, then an EM part (π0 photons, starting at t_0) and a
    hadronic part with visible fraction v; showers interacting beyond the calorimeter punch through."""
    geometry, physics = config.geometry_obj, config.physics
    k = len(energies_mev)
    t0 = hadronic.sample_first_interaction(k, rng)
    range_lambda = energies_mev / physics.mip_mev_per_lambda  # a pion that runs out of energy stops
    interacts = (t0 < range_lambda) & (t0 < geometry.layer_depth_lambda[-1])
    track, track_mev = track_spots(geometry, np.minimum(t0, range_lambda), physics, rng)
    remaining = np.where(interacts, np.maximum(energies_mev - track_mev, 0.0), 0.0)
    f_em = hadronic.sample_em_fractions(remaining, physics, rng)
    em_mev = f_em * remaining
    had_mev = remaining - em_mev
    visible_mev = had_mev * hadronic.sample_visible_fractions(had_mev, physics, rng)
    cap = spot_cap(geometry, physics)
    start_x0 = np.interp(t0, geometry.layer_depth_lambda, geometry.layer_depth_x0)
    em = em_spots(
        geometry,
        em_mev,
        start_x0,
        spot_counts(em_mev, energies_mev, cap, physics),
        "photon",
        physics,
        rng,
    )
    had = hadron_spots(
        geometry,
        had_mev,
        visible_mev,
        t0,
        spot_counts(had_mev, energies_mev, cap, physics),
        physics,
        rng,
    )
    return Spots.concat([track, em, had])


def _spot_budget(geometry: Geometry, config: SimConfig, energies_mev: np.ndarray) -> np.ndarray:
    """Upper bound on spots per shower (n,), used to size chunks."""
    physics = config.physics
    n = np.minimum(physics.spots_per_gev * energies_mev / 1000.0, spot_cap(geometry, physics)) + 2
    return n + 2 * physics.min_spots + geometry.n_layers


def simulate_showers(
    config: SimConfig,
    incident_energies_mev: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Showers (n, n_voxels) float32 MeV for the given incident energies (n,) MeV.

    Works through chunks of at most `max_spots_per_chunk` spots and `max_cells_per_chunk` voxel cells, so
    peak memory beyond the output array is bounded whatever the energies.
    """
    geometry, physics = config.geometry_obj, config.physics
    energies = np.asarray(incident_energies_mev, dtype=np.float64).reshape(-1)
    n, n_voxels = len(energies), geometry.n_voxels
    out = np.empty((n, n_voxels), dtype=np.float32)
    budget = np.cumsum(_spot_budget(geometry, config, energies))
    max_rows = max(1, physics.max_cells_per_chunk // n_voxels)
    make_spots = _pion_chunk_spots if config.resolved_particle == "pion" else _em_chunk_spots
    threshold = np.float32(config.resolved_threshold_mev)
    start = 0
    while start < n:
        before = budget[start - 1] if start else 0.0
        stop = int(np.searchsorted(budget, before + physics.max_spots_per_chunk, side="right"))
        stop = min(max(stop, start + 1), start + max_rows, n)
        chunk = energies[start:stop]
        spots = make_spots(config, chunk, rng)
        voxel = deposit.spot_voxels(geometry, spots.layer, spots.r_mm, spots.azimuth)
        deposited = deposit.bin_spots(spots.shower, voxel, spots.energy_mev, len(chunk), n_voxels)
        deposit.sample_readout(deposited, geometry, physics.sampling_coeff, rng)
        block = out[start:stop]
        block[...] = deposited
        if threshold > 0:
            block[block < threshold] = 0.0
        start = stop
    return out


def simulate_batch(
    config: SimConfig,
    rng: np.random.Generator,
    n: int,
    *,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n incident energies from the prior and simulate them.

    Returns (incident_energies_mev (n,) float64, showers_mev (n, n_voxels) float32). `start` is the global
    index of the first shower (used by the "fixed" prior to cycle through its energies).
    """
    energies = sample_incident_energies(config, rng, n, start)
    return energies, simulate_showers(config, energies, rng)


def shard_rng(config: SimConfig, shard_index: int) -> np.random.Generator:
    """The generator of one shard: `np.random.default_rng([seed, shard_index])`."""
    return np.random.default_rng([config.seed, shard_index])


def simulate_shard(config: SimConfig, shard_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Shard `shard_index` of `config` (showers [i · shard_size, …)), deterministic in (seed, shard_index)."""
    start, stop = config.shard_range(shard_index)
    return simulate_batch(config, shard_rng(config, shard_index), stop - start, start=start)
