"""Two-component lateral profiles and spot positions.

f(r) = p · 2r R_C² / (r² + R_C²)² + (1 − p) · 2r R_T² / (r² + R_T²)², each component with CDF
r² / (r² + R²), sampled by inversion: r = R · sqrt(u / (1 − u)). Radii are in Molière units of the layer
the spot lands in and grow linearly with the relative depth τ; the core fraction p falls after the
maximum. Azimuth is uniform.
"""

from __future__ import annotations

import numpy as np


def linear(coeffs: tuple[float, float], tau: np.ndarray) -> np.ndarray:
    """a + b τ for coeffs (a, b), shape like τ."""
    return coeffs[0] + coeffs[1] * tau


def em_core_fraction(coeffs: tuple[float, float, float], tau: np.ndarray) -> np.ndarray:
    """Core fraction p(τ) = max(a − b · max(τ − 1, 0), c): constant up to the maximum, then falling."""
    a, b, c = coeffs
    return np.maximum(a - b * np.maximum(tau - 1.0, 0.0), c)


def sample_radii(
    core_radius: np.ndarray,
    tail_radius: np.ndarray,
    core_fraction: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Radii (m,) from the two-component profile; all inputs (m,) in the same length unit as the output."""
    m = core_radius.shape[0]
    radius = np.where(rng.random(m) < core_fraction, core_radius, tail_radius)
    u = rng.random(m)
    return radius * np.sqrt(u / (1.0 - u))


def sample_azimuths(m: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform azimuths (m,) in [−π, π) rad."""
    return rng.uniform(-np.pi, np.pi, m)
