"""Seeding: same (seed, shard) → identical bytes; different shards/seeds → independent streams;
chunking keeps memory bounded for the largest energies."""

from __future__ import annotations

import numpy as np

from caloray.sim import Physics, SimConfig, simulate_shard, simulate_showers
from caloray.sim.shower import _em_chunk_spots, _pion_chunk_spots, _spot_budget


def test_same_seed_and_shard_give_identical_bytes() -> None:
    config = SimConfig.preset("ecal-hcal", n_showers=600, shard_size=300, seed=11)
    e1, s1 = simulate_shard(config, 1)
    e2, s2 = simulate_shard(config, 1)
    assert e1.tobytes() == e2.tobytes() and s1.tobytes() == s2.tobytes()
    assert s1.dtype == np.float32 and s1.shape == (300, config.geometry_obj.n_voxels)


def test_shards_and_seeds_are_independent() -> None:
    config = SimConfig(
        geometry="ecal-hcal",
        prior="fixed",
        energies_mev=(20e3,),
        n_showers=4_000,
        shard_size=2_000,
        seed=5,
    )
    _, s0 = simulate_shard(config, 0)
    _, s1 = simulate_shard(config, 1)
    t0, t1 = s0.sum(1, dtype=np.float64), s1.sum(1, dtype=np.float64)
    assert not np.array_equal(t0, t1)
    assert abs(np.corrcoef(t0, t1)[0, 1]) < 4 / np.sqrt(len(t0))  # ≈ 0 within 4σ
    assert abs(t0.mean() - t1.mean()) < 4 * np.hypot(t0.std(), t1.std()) / np.sqrt(len(t0))
    _, other_seed = simulate_shard(SimConfig(**{**config.__dict__, "seed": 6}), 0)
    assert not np.array_equal(s0, other_seed)


def test_chunks_respect_the_spot_budget_at_1_tev() -> None:
    for geometry, particle, make in (
        ("ds2", "electron", _em_chunk_spots),
        ("ecal-hcal", "pion", _pion_chunk_spots),
    ):
        config = SimConfig(geometry=geometry, particle=particle)
        energies = np.array([1e3, 1e5, 1e6, 1e6])
        spots = make(config, energies, np.random.default_rng(0))
        per_shower = np.bincount(spots.shower, minlength=len(energies))
        assert np.all(per_shower <= _spot_budget(config.geometry_obj, config, energies))
        assert np.all(per_shower > 0)


def test_tiny_chunks_still_produce_full_energy_showers() -> None:
    physics = Physics(max_spots_per_chunk=5_000, max_cells_per_chunk=20_000)
    config = SimConfig(geometry="ds2", particle="electron", physics=physics)
    showers = simulate_showers(config, np.full(20, 1e6), np.random.default_rng(0))  # 1 TeV, 1 shower/chunk
    response = showers.sum(1, dtype=np.float64) / 1e6
    assert np.all(np.abs(response - 1) < 0.03)
