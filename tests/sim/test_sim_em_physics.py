"""Electromagnetic showers: longitudinal maximum, response, resolution, lateral shape, thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from caloray.sim import Physics, SimConfig, simulate_showers
from caloray.sim.longitudinal import median_t_max_x0, sample_em_profiles


def _layer_energies(showers: np.ndarray, config: SimConfig) -> np.ndarray:
    geometry = config.geometry_obj
    return np.stack([showers[:, geometry.layer_slice(i)].sum(1) for i in range(geometry.n_layers)], axis=1)


@pytest.mark.parametrize("energy_mev", [2e3, 16e3, 128e3])
def test_mean_longitudinal_profile_peaks_at_spec_t_max(energy_mev: float) -> None:
    config = SimConfig(geometry="ds2", particle="electron", threshold_mev=0.0)
    geometry = config.geometry_obj
    showers = simulate_showers(config, np.full(600, energy_mev), np.random.default_rng(1))
    profile = _layer_energies(showers, config).mean(0) / np.diff(geometry.layer_depth_x0)  # dE/dt, MeV/X0
    centres = 0.5 * (geometry.layer_depth_x0[1:] + geometry.layer_depth_x0[:-1])
    i = int(np.argmax(profile))
    y0, y1, y2 = profile[i - 1 : i + 2]
    peak = centres[i] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2) * 0.8  # parabola through the maximum
    expected = float(median_t_max_x0(energy_mev, "electron", config.physics))  # ln(E/E_c) − 1
    assert abs(peak - expected) < 0.8, (peak, expected)  # within one ds2 layer (0.8 X0)


def test_photons_peak_half_an_x0_later_than_electrons() -> None:
    rng = np.random.default_rng(0)
    e = np.full(20_000, 32e3)
    photons = sample_em_profiles(e, "photon", Physics(), rng)
    electrons = sample_em_profiles(e, "electron", Physics(), rng)
    assert np.median(photons.t_max) - np.median(electrons.t_max) == pytest.approx(0.5, abs=0.05)


def test_alpha_and_t_max_fluctuate_shower_by_shower_and_correlated() -> None:
    profile = sample_em_profiles(np.full(20_000, 1e4), "electron", Physics(), np.random.default_rng(0))
    ln_t, ln_a = np.log(profile.t_max), np.log(profile.alpha)
    assert 0.1 < ln_t.std() < 0.4 and 0.1 < ln_a.std() < 0.5
    assert np.corrcoef(ln_t, ln_a)[0, 1] > 0.4
    np.testing.assert_allclose(profile.t_max, (profile.alpha - 1) / profile.beta)


@pytest.mark.parametrize(
    ("geometry", "particle", "energies_mev"),
    [
        ("ds2", "electron", (2e3, 32e3, 256e3)),
        ("ds1-photons", "photon", (1024.0, 65536.0)),
        ("ecal-hcal", "electron", (10e3, 50e3)),
    ],
)
def test_em_response_is_one(geometry: str, particle: str, energies_mev: tuple[float, ...]) -> None:
    config = SimConfig(geometry=geometry, particle=particle)
    for energy in energies_mev:
        showers = simulate_showers(config, np.full(500, energy), np.random.default_rng(int(energy)))
        response = showers.sum(1, dtype=np.float64) / energy
        assert response.mean() == pytest.approx(1.0, abs=0.02), (geometry, energy, response.mean())


def test_relative_resolution_falls_like_inverse_sqrt_energy() -> None:
    config = SimConfig(geometry="ds2", particle="electron")
    energies = np.array([1e3, 2e3, 4e3, 8e3, 16e3])
    rel = []
    for energy in energies:
        showers = simulate_showers(config, np.full(1_500, energy), np.random.default_rng(int(energy)))
        response = showers.sum(1, dtype=np.float64) / energy
        rel.append(response.std() / response.mean())
    slope = np.polyfit(np.log(energies), np.log(rel), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.05), (slope, rel)
    assert rel[0] / rel[2] == pytest.approx(2.0, rel=0.12)  # E → 4E halves σ/μ


def test_lateral_profile_widens_with_depth_and_contains_90_percent_in_moliere_radius() -> None:
    config = SimConfig(geometry="ds2", particle="electron", threshold_mev=0.0)
    geometry = config.geometry_obj
    energy = 50e3
    showers = simulate_showers(config, np.full(500, energy), np.random.default_rng(5))
    r_centre = geometry.voxel_centres[0]
    depth = geometry.layer_depth_x0[:-1][geometry.voxel_layer] + 0.4
    t_max = float(median_t_max_x0(energy, "electron", config.physics))
    mean_e = showers.mean(0, dtype=np.float64)

    def mean_radius(lo: float, hi: float) -> float:
        sel = (depth >= lo) & (depth < hi)
        return float(np.average(r_centre[sel], weights=mean_e[sel]))

    early, at_max, late = (
        mean_radius(0, 0.5 * t_max),
        mean_radius(0.8 * t_max, 1.2 * t_max),
        mean_radius(1.8 * t_max, 2.5 * t_max),
    )
    assert early < at_max < late
    inside = mean_e[r_centre < 11.0].sum() / mean_e.sum()  # two ds2 radial bins ≈ 0.85 R_M (11 mm)
    assert 0.8 < inside < 0.97


def test_readout_threshold_zeroes_small_voxels() -> None:
    energies = np.full(200, 5e3)
    with_threshold = simulate_showers(SimConfig(geometry="ds2"), energies, np.random.default_rng(0))
    without = simulate_showers(
        SimConfig(geometry="ds2", threshold_mev=0.0),
        energies,
        np.random.default_rng(0),
    )
    assert with_threshold[with_threshold > 0].min() >= np.float32(0.01515)
    small = (without > 0) & (without < 0.01515)
    assert small.any()  # the threshold has something to cut…
    assert not with_threshold[small].any()  # …and cuts exactly those voxels
    np.testing.assert_array_equal(with_threshold[~small], without[~small])
