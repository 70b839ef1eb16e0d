"""Incident-energy priors match their distributions; configs validate and round-trip through JSON."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from caloray.errors import ConfigError, GeometryError
from caloray.sim import DS1_LADDER_MEV, SimConfig, sample_incident_energies


def test_uniform_prior_matches_distribution() -> None:
    config = SimConfig(geometry="ecal-hcal", prior="uniform", energy_min_mev=1e3, energy_max_mev=1e5)
    e = sample_incident_energies(config, np.random.default_rng(1), 20_000)
    assert e.min() >= 1e3 and e.max() <= 1e5
    assert stats.kstest(e, stats.uniform(loc=1e3, scale=1e5 - 1e3).cdf).pvalue > 1e-3


def test_log_uniform_prior_matches_distribution() -> None:
    config = SimConfig(geometry="ds2", prior="log-uniform", energy_min_mev=1e3, energy_max_mev=1e6)
    e = sample_incident_energies(config, np.random.default_rng(2), 20_000)
    assert e.min() >= 1e3 and e.max() <= 1e6
    assert stats.kstest(e, stats.loguniform(1e3, 1e6).cdf).pvalue > 1e-3
    # and it is clearly not uniform
    assert stats.kstest(e, stats.uniform(loc=1e3, scale=1e6 - 1e3).cdf).pvalue < 1e-10


def test_ds1_ladder_prior_is_uniform_over_15_powers_of_two() -> None:
    assert DS1_LADDER_MEV[0] == 256.0 and DS1_LADDER_MEV[-1] == 4_194_304.0 and len(DS1_LADDER_MEV) == 15
    config = SimConfig.preset("ds1-photons")
    e = sample_incident_energies(config, np.random.default_rng(3), 30_000)
    values, counts = np.unique(e, return_counts=True)
    np.testing.assert_array_equal(values, DS1_LADDER_MEV)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_fixed_prior_cycles_by_global_index() -> None:
    config = SimConfig(geometry="ecal-hcal", prior="fixed", energies_mev=(1e4, 2e4, 3e4))
    e = sample_incident_energies(config, np.random.default_rng(0), 7, start=5)
    np.testing.assert_array_equal(e, [3e4, 1e4, 2e4, 3e4, 1e4, 2e4, 3e4])


def test_config_validation_and_json_round_trip() -> None:
    with pytest.raises(ConfigError, match="prior"):
        SimConfig(prior="gaussian")
    with pytest.raises(ConfigError, match="energies_mev"):
        SimConfig(prior="fixed")
    with pytest.raises(ConfigError, match="energy_min_mev"):
        SimConfig(prior="uniform", energy_min_mev=5.0, energy_max_mev=1.0)
    with pytest.raises(GeometryError):
        SimConfig(geometry="ds9")
    config = SimConfig.preset("ecal-hcal", n_showers=123, seed=7)
    assert config.resolved_particle == "pion" and config.energy_max_mev == 1e5
    assert SimConfig.from_json(config.to_json()) == config


def test_sharding_and_resolved_defaults() -> None:
    config = SimConfig(geometry="ds2", n_showers=2_500, shard_size=1_000)
    assert config.n_shards == 3 and config.shard_range(2) == (2_000, 2_500)
    assert config.resolved_threshold_mev == pytest.approx(0.01515)
    assert SimConfig(geometry="ds1-photons").resolved_threshold_mev == 0.0
    # automatic shard size keeps a shard's float32 array near 128 MiB
    assert SimConfig(geometry="ds2").resolved_shard_size * 6480 * 4 <= 130 << 20


def test_default_shard_size_rule() -> None:
    from caloray.sim.config import DEFAULT_SHARDS, MAX_SHARD_BYTES, MIN_SHARD_SHOWERS, default_shard_size

    # 20k small showers were one shard (one busy worker); now DEFAULT_SHARDS shards of ceil(n / shards)
    config = SimConfig.preset("ds1-photons", n_showers=20_000)
    assert config.resolved_shard_size == 1_250 and config.n_shards == DEFAULT_SHARDS
    # a small run: shards of MIN_SHARD_SHOWERS, still more than one per worker on 2 workers
    assert SimConfig.preset("ds2", n_showers=1_000).n_shards == 1_000 // MIN_SHARD_SHOWERS == 4
    # a large run: the memory cap (ds2: 6480 voxels × 4 bytes per shower)
    assert default_shard_size(10**7, 6480) == MAX_SHARD_BYTES // (4 * 6480) == 5_178
    assert default_shard_size(0, 6480) == MIN_SHARD_SHOWERS and default_shard_size(5, 10**9) == 1
    # below the memory cap: at most DEFAULT_SHARDS shards, each at least MIN_SHARD_SHOWERS (or all showers)
    for n in (1, 249, 4_001, 80_000, 1_000_000):
        size = default_shard_size(n, 368)
        assert -(-n // size) <= DEFAULT_SHARDS and size >= min(n, MIN_SHARD_SHOWERS)
