"""Pions: EM-fraction mean, lower and broader response than electrons, positive skew (high tail)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from caloray.geometry import get_geometry
from caloray.sim import Physics, SimConfig, em_fraction_mean, simulate_showers
from caloray.sim.hadronic import (
    clipped_gamma_mean,
    em_fraction_scale,
    sample_em_fractions,
    sample_visible_fractions,
)
from caloray.sim.spots import em_spots, hadron_spots


def test_em_fraction_mean_formula() -> None:
    e_gev = np.array([0.5, 1.0, 10.0, 50.0, 100.0])
    expected = np.array([0.0, 0.0, 1 - 10**-0.18, 1 - 50**-0.18, 1 - 100**-0.18])
    np.testing.assert_allclose(em_fraction_mean(e_gev * 1e3, Physics()), expected, atol=1e-12)


def test_em_fraction_scale_is_solved_exactly() -> None:
    means = np.linspace(0.01, 0.95, 50)
    for shape in (2.0, 4.0):
        np.testing.assert_allclose(
            clipped_gamma_mean(em_fraction_scale(means, shape), shape),
            means,
            atol=1e-12,
        )


@pytest.mark.parametrize("energy_gev", [2.0, 10.0, 50.0, 90.0, 1000.0])
def test_sampled_em_fraction_has_the_formula_mean_and_positive_skew(energy_gev: float) -> None:
    physics = Physics()
    f_em = sample_em_fractions(np.full(200_000, energy_gev * 1e3), physics, np.random.default_rng(0))
    mean = float(em_fraction_mean(energy_gev * 1e3, physics))
    assert f_em.min() >= 0 and f_em.max() <= 1
    assert f_em.mean() == pytest.approx(mean, abs=4 * f_em.std() / np.sqrt(f_em.size))
    assert f_em.std() > 0.15 * mean  # large event-by-event fluctuations
    if energy_gev <= 90:
        assert stats.skew(f_em) > 0.2


def _response(particle: str, energy_mev: float, n: int, seed: int) -> np.ndarray:
    config = SimConfig(geometry="ecal-hcal", particle=particle)
    showers = simulate_showers(config, np.full(n, energy_mev), np.random.default_rng(seed))
    return showers.sum(1, dtype=np.float64) / energy_mev


@pytest.mark.parametrize("energy_gev", [10.0, 30.0, 50.0, 70.0, 90.0])
def test_pion_response_lower_broader_and_positively_skewed(energy_gev: float) -> None:
    pions = _response("pion", energy_gev * 1e3, 3_000, seed=int(energy_gev))
    electrons = _response("electron", energy_gev * 1e3, 500, seed=int(energy_gev) + 1)
    assert pions.mean() < electrons.mean() - 0.1  # h/e < 1: lower mean response
    assert 0.6 < pions.mean() < 0.9
    assert pions.std() > 3 * electrons.std()  # much larger spread
    assert stats.skew(pions) > 0.1  # tail to high E_dep/E_inc (EM-rich showers), paper Fig. 7
    mode_side = np.median(pions)
    assert pions.mean() > mode_side  # mean above the median: right-skewed


def test_pion_response_rises_with_energy_as_f_em_grows() -> None:
    means = [_response("pion", e, 1_500, seed=int(e)).mean() for e in (5e3, 80e3)]
    assert means[1] > means[0] + 0.03


def test_hadronic_showers_are_deeper_than_em_showers() -> None:
    rng = np.random.default_rng(0)
    config_e = SimConfig(geometry="ecal-hcal", particle="electron")
    config_pi = SimConfig(geometry="ecal-hcal", particle="pion")
    hcal = config_e.geometry_obj.voxel_layer >= 3
    electrons = simulate_showers(config_e, np.full(500, 30e3), rng)
    pions = simulate_showers(config_pi, np.full(500, 30e3), rng)
    assert electrons[:, hcal].sum() / electrons.sum() < 0.02  # EM showers stay in the ECAL (≈ 23 X0)
    assert pions[:, hcal].sum() / pions.sum() > 0.4


@pytest.mark.parametrize("layer", [1, 4])
def test_hadronic_part_is_laterally_broader_than_em(layer: int) -> None:
    geometry, physics, rng = get_geometry("ecal-hcal"), Physics(), np.random.default_rng(0)
    k = 2_000
    energies = np.full(k, 20e3)
    start = layer if layer > 1 else 0  # both components start at the front of the section
    em = em_spots(
        geometry,
        energies,
        np.full(k, geometry.layer_depth_x0[start]),
        np.full(k, 50),
        "photon",
        physics,
        rng,
    )
    had = hadron_spots(
        geometry,
        energies,
        0.6 * energies,
        np.full(k, geometry.layer_depth_lambda[start]),
        np.full(k, 50),
        physics,
        rng,
    )
    r_em, r_had = np.median(em.r_mm[em.layer == layer]), np.median(had.r_mm[had.layer == layer])
    assert r_had > 2 * r_em, (layer, r_had, r_em)


@pytest.mark.parametrize("kappa", [0.5, 1.0])
def test_visible_fraction_mean_spread_and_log_skew(kappa: float) -> None:
    # E[v] = h/e exactly by the Gamma MGF normalization; ln v has skewness 2/√κ (a shifted, scaled Gamma).
    physics = Physics(invisible_skew_shape=kappa, invisible_sigma=0.2, h_over_e=0.6)
    had_mev = np.full(400_000, 25_000.0)
    v = sample_visible_fractions(had_mev, physics, np.random.default_rng(3))
    assert abs(v.mean() - 0.6) < 5 * v.std() / np.sqrt(v.size)
    assert np.log(v).std() == pytest.approx(0.2 / 0.6 / 5.0, rel=0.02)  # σ of ln v = relative sd
    assert stats.skew(np.log(v)) == pytest.approx(2 / np.sqrt(kappa), rel=0.1)


def test_visible_fraction_beta_when_skew_is_off() -> None:
    physics = Physics(invisible_skew_shape=0.0, invisible_sigma=0.2, h_over_e=0.6)
    v = sample_visible_fractions(np.full(200_000, 25_000.0), physics, np.random.default_rng(4))
    assert v.mean() == pytest.approx(0.6, abs=3e-4)
    assert v.std() == pytest.approx(0.2 / 5.0, rel=0.03)
    assert abs(stats.skew(v)) < 0.15  # a Beta this narrow is nearly symmetric


def test_ecal_hcal_readout_threshold_removes_sub_threshold_cells_only() -> None:
    """The ECAL+HCAL reads out cells ≥ 15.15 keV (as ds2/ds3): without it the Gamma sampling term leaves cells
    with sub-keV, down to denormal-size, deposits; the threshold zeroes exactly those and changes no other cell."""
    config = SimConfig(geometry="ecal-hcal", particle="pion")
    assert config.resolved_threshold_mev == 0.01515
    energies = np.geomspace(1e3, 1e5, 400)
    with_threshold = simulate_showers(config, energies, np.random.default_rng(4))
    without = simulate_showers(SimConfig(geometry="ecal-hcal", particle="pion", threshold_mev=0.0), energies,
                               np.random.default_rng(4))
    small = (without > 0) & (without < np.float32(0.01515))
    assert (without[without > 0] < 1e-6).any()  # the artifact: deposits far below any readout (< 1 eV)
    assert not with_threshold[small].any() and with_threshold[with_threshold > 0].min() >= np.float32(0.01515)
    np.testing.assert_array_equal(with_threshold[~small], without[~small])
    # the last HCAL layer (72 cells) is then either empty or holds ≥ one cell's threshold
    last = with_threshold[:, get_geometry("ecal-hcal").voxel_layer == 5].sum(1)
    assert (last == 0).any() and last[last > 0].min() >= np.float32(0.01515)
    lost = (without.sum(1, dtype=np.float64) - with_threshold.sum(1, dtype=np.float64)) / energies
    assert 0 <= lost.min() and lost.max() < 1e-3  # a negligible part of the shower's energy
