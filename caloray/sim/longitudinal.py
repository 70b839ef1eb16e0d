"""Electromagnetic longitudinal profiles: per-shower Gamma parameters and spot depths (X0).

dE/dt ∝ t^(α−1) e^(−βt) with t in radiation lengths and t_max = (α − 1)/β. The median t_max is
ln(E/E_c) + C (C = −0.5 photons, −1.0 electrons); the median α grows like a + b ln(E/E_c). Shower by
shower, (ln t_max, ln α) fluctuate as a correlated bivariate normal whose widths shrink with ln(E/E_c)
(a GFlash-style parametrization of homogeneous-medium showers, not a Geant4 fit). α is kept ≥ 1 + 0.3 t_max
(β ≥ 0.3 per X0), which only bites for the rare low-energy showers whose α fluctuates towards 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloray.sim.config import Physics

MIN_TMAX_X0 = 0.2
MIN_BETA_PER_X0 = 0.3  # keeps α ≳ 1 showers from stretching over tens of X0 at low energy


@dataclass(frozen=True)
class GammaProfile:
    """Per-shower Gamma profile parameters, each (n,): shape α, rate β [1/depth unit], t_max [depth unit]."""

    alpha: np.ndarray
    beta: np.ndarray
    t_max: np.ndarray


def t_max_offset(particle: str, physics: Physics) -> float:
    """The constant C in t_max = ln(E/E_c) + C (photons and π0 photons −0.5, electrons −1.0)."""
    return physics.t_max_offset_electron if particle == "electron" else physics.t_max_offset_photon


def median_t_max_x0(energies_mev: np.ndarray, particle: str, physics: Physics) -> np.ndarray:
    """The spec's t_max = ln(E/E_c) + C in X0, shape like `energies_mev` (before the lower clip)."""
    return np.log(np.asarray(energies_mev) / physics.critical_energy_mev) + t_max_offset(particle, physics)


def sample_em_profiles(
    energies_mev: np.ndarray,
    particle: str,
    physics: Physics,
    rng: np.random.Generator,
) -> GammaProfile:
    """Draw correlated (t_max, α) per shower for showers of `energies_mev` (n,); returns a `GammaProfile`."""
    ln_y = np.log(np.maximum(np.asarray(energies_mev, dtype=np.float64) / physics.critical_energy_mev, np.e))
    t_median = np.maximum(ln_y + t_max_offset(particle, physics), MIN_TMAX_X0)
    alpha_median = physics.alpha_intercept + physics.alpha_slope * ln_y
    # Widths 1 / (a + b ln y), kept finite and ≤ 0.5 for low energies where the formula breaks down.
    sigma_t = 1.0 / np.maximum(physics.sigma_ln_tmax[0] + physics.sigma_ln_tmax[1] * ln_y, 2.0)
    sigma_a = 1.0 / np.maximum(physics.sigma_ln_alpha[0] + physics.sigma_ln_alpha[1] * ln_y, 2.0)
    rho = np.clip(physics.rho_tmax_alpha[0] + physics.rho_tmax_alpha[1] * ln_y, -0.95, 0.95)
    z1 = rng.standard_normal(ln_y.shape)
    z2 = rng.standard_normal(ln_y.shape)
    t_max = np.maximum(t_median * np.exp(sigma_t * z1), MIN_TMAX_X0)
    alpha = alpha_median * np.exp(sigma_a * (rho * z1 + np.sqrt(1 - rho**2) * z2))
    alpha = np.maximum(alpha, 1.0 + MIN_BETA_PER_X0 * t_max)
    return GammaProfile(alpha=alpha, beta=(alpha - 1.0) / t_max, t_max=t_max)


def sample_depths(profile: GammaProfile, owner: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Depths (m,) measured from each shower's start, one per spot; `owner` (m,) indexes the shower."""
    return rng.gamma(profile.alpha[owner]) / profile.beta[owner]
