"""Hadronic (π±) shower ingredients: first interaction, EM fraction, visible fraction, depth profile.

- First interaction depth t_0 ~ Exponential(1) in interaction lengths λ; before it the pion ionises
  like a MIP (`mip_mev_per_lambda` per λ, on the EM scale).
- EM fraction f_em of the energy left at t_0: mean 1 − (E/E_0)^(k − 1) (Groom/Wigmans form, E_0 = 1 GeV,
  k = 0.82; 0 at and below E_0) with large event-by-event fluctuations f_em = min(1, s · G),
  G ~ Gamma(κ, 1). G is positively skewed, so rare EM-rich showers form a tail of the response to high
  E_dep/E_inc; s is solved per shower so that E[min(1, s G)] equals the mean formula exactly:
      E[min(1, sG)] = s κ P(κ + 1, 1/s) + 1 − P(κ, 1/s),   P the regularized lower incomplete gamma.
- The hadronic part (1 − f_em) deposits a visible fraction v with mean h/e = 0.6 and relative spread
  ≈ invisible_sigma / (h/e) / sqrt(E_had / GeV) (nuclear binding, neutrons: invisible-energy fluctuations):
  a Beta by default, or with `invisible_skew_shape` > 0 a right-skewed ln v (a scaled Gamma), i.e. a few
  showers lose much less energy invisibly than typical. Unlike the f_em tail, that one is not visible in
  the ECAL/HCAL split, so it survives the compensation a flow learns from layer energies.
- Its longitudinal profile is a Gamma in λ after t_0 with t_max = a + b ln(E/GeV).
These are parametrized showers, not Geant4.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from caloray.sim.config import Physics
from caloray.sim.longitudinal import GammaProfile

MIN_TMAX_LAMBDA = 0.1


def em_fraction_mean(energies_mev: np.ndarray, physics: Physics) -> np.ndarray:
    """⟨f_em⟩ = 1 − (E/E_0)^(k − 1), clipped to [0, 1); shape like `energies_mev`."""
    e_over_e0 = np.asarray(energies_mev, dtype=np.float64) / (1000.0 * physics.em_fraction_e0_gev)
    return np.clip(1.0 - np.power(np.maximum(e_over_e0, 1.0), physics.em_fraction_k - 1.0), 0.0, 1.0)


def clipped_gamma_mean(scale: np.ndarray, shape: float) -> np.ndarray:
    """E[min(1, scale · G)] for G ~ Gamma(shape, 1); shape like `scale`."""
    x = 1.0 / scale
    return scale * shape * special.gammainc(shape + 1.0, x) + 1.0 - special.gammainc(shape, x)


def em_fraction_scale(mean: np.ndarray, shape: float) -> np.ndarray:
    """Scale s with E[min(1, s G)] = mean (0 < mean < 1), by 64 vectorized bisection steps on ln s."""
    mean = np.asarray(mean, dtype=np.float64)
    lo = np.full(mean.shape, -40.0)
    hi = np.full(mean.shape, 10.0)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = clipped_gamma_mean(np.exp(mid), shape) < mean
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.exp(0.5 * (lo + hi))


def sample_em_fractions(energies_mev: np.ndarray, physics: Physics, rng: np.random.Generator) -> np.ndarray:
    """Per-shower f_em in [0, 1], shape (n,), with mean `em_fraction_mean` and positive skew."""
    mean = em_fraction_mean(energies_mev, physics)
    g = rng.gamma(physics.em_fraction_gamma_shape, size=mean.shape)
    active = mean > 0
    scale = np.zeros_like(mean)
    if active.any():  # solve once per distinct energy (fixed-energy samples repeat them)
        unique, inverse = np.unique(mean[active], return_inverse=True)
        scale[active] = em_fraction_scale(unique, physics.em_fraction_gamma_shape)[inverse]
    return np.minimum(1.0, scale * g)


def sample_visible_fractions(
    had_energies_mev: np.ndarray,
    physics: Physics,
    rng: np.random.Generator,
) -> np.ndarray:
    """Visible fraction v per shower, shape (n,): mean h/e, sd invisible_sigma / sqrt(E_had/GeV).

    With `invisible_skew_shape` κ > 0, ln v is a shifted, scaled Gamma(κ) (skewness 2/√κ), normalized by
    the Gamma moment generating function so that E[v] = h/e exactly (before the cap at 1); else v ~ Beta.
    """
    m = physics.h_over_e
    sd = physics.invisible_sigma / np.sqrt(np.maximum(np.asarray(had_energies_mev) / 1000.0, 0.25))
    sd = np.minimum(sd, 0.9 * np.sqrt(m * (1 - m)))
    kappa = physics.invisible_skew_shape
    if kappa > 0:
        # σ of ln v ≈ relative sd; t = σ/√κ < 1 keeps E[exp(t G)] = (1 − t)^(−κ) finite.
        t = np.minimum(sd / m / np.sqrt(kappa), 0.5)
        g = rng.gamma(kappa, size=t.shape)
        log_norm = -kappa * np.log1p(-t)
        return np.minimum(1.0, m * np.exp(t * g - log_norm))
    concentration = m * (1 - m) / sd**2 - 1.0
    return rng.beta(m * concentration, (1 - m) * concentration)


def sample_first_interaction(n: int, rng: np.random.Generator) -> np.ndarray:
    """Depth of the first inelastic interaction, (n,) in λ: Exponential(1)."""
    return rng.exponential(1.0, n)


def sample_hadron_profiles(
    had_energies_mev: np.ndarray,
    physics: Physics,
    rng: np.random.Generator,
) -> GammaProfile:
    """Gamma profiles in λ (measured from t_0) for the hadronic parts, shape (n,)."""
    ln_e = np.log(np.maximum(np.asarray(had_energies_mev, dtype=np.float64) / 1000.0, 0.1))
    t_max = np.maximum(physics.hadron_tmax_lambda[0] + physics.hadron_tmax_lambda[1] * ln_e, MIN_TMAX_LAMBDA)
    alpha_median = 1.0 + physics.hadron_beta_per_lambda * t_max
    alpha = np.maximum(
        alpha_median * np.exp(physics.hadron_sigma_ln_alpha * rng.standard_normal(ln_e.shape)),
        1.05,
    )
    return GammaProfile(alpha=alpha, beta=(alpha - 1.0) / t_max, t_max=t_max)
