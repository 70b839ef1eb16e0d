"""Discrete energy spots sampled from the shower profiles, for a chunk of showers.

Each component (EM shower, hadronic part, pre-interaction MIP track) becomes `Spots`: flat arrays of
the owning shower (index within the chunk), layer position (−1 when beyond the calorimeter), radius
(mm) and azimuth (rad) about the shower axis, and energy (MeV, EM scale). Spot counts are ∝ energy
(`spots_per_gev`), at least `min_spots` per non-empty component, and capped per shower (see
`spot_cap`); each spot carries energy / count, so a shower's spots sum exactly to its component energy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caloray.geometry import Geometry
from caloray.sim import hadronic, lateral, longitudinal
from caloray.sim.config import Physics

MAX_TAU = 3.0  # lateral radii stop growing beyond 3 t_max (sparse, late part of the shower)


@dataclass(frozen=True)
class Spots:
    """m spots: shower (m,) int64, layer (m,) int64, r_mm (m,), azimuth (m,) rad, energy_mev (m,)."""

    shower: np.ndarray
    layer: np.ndarray
    r_mm: np.ndarray
    azimuth: np.ndarray
    energy_mev: np.ndarray

    @staticmethod
    def concat(parts: list[Spots]) -> Spots:
        return Spots(*(np.concatenate([getattr(p, f) for p in parts]) for f in Spots.__dataclass_fields__))


def spot_cap(geometry: Geometry, physics: Physics) -> int:
    """Most spots per shower: max(spot_cap_min, spot_cap_per_voxel · n_voxels)."""
    return int(max(physics.spot_cap_min, physics.spot_cap_per_voxel * geometry.n_voxels))


def spot_counts(
    component_mev: np.ndarray,
    incident_mev: np.ndarray,
    cap: int,
    physics: Physics,
) -> np.ndarray:
    """Spots (n,) for a component of energy `component_mev` (n,): ∝ energy, scaled down per shower so the
    whole shower (∝ `incident_mev`) stays within `cap`; at least `min_spots` when the component is > 0."""
    full = physics.spots_per_gev * np.asarray(incident_mev) / 1000.0
    scale = np.minimum(1.0, cap / np.maximum(full, 1e-12))
    n = np.rint(physics.spots_per_gev * component_mev / 1000.0 * scale).astype(np.int64)
    return np.where(component_mev > 0, np.maximum(n, physics.min_spots), 0)


def _layers_of(depth: np.ndarray, front_faces: np.ndarray) -> np.ndarray:
    """Layer position (m,) of depths given the (L+1,) front-face depths; −1 beyond the last layer."""
    layer = np.searchsorted(front_faces, depth, side="right") - 1
    return np.where(layer < len(front_faces) - 1, layer, -1)


def _moliere_mm(geometry: Geometry) -> np.ndarray:
    return np.array([layer.material.moliere_radius_mm for layer in geometry.layers])


def interaction_length_mm(geometry: Geometry, physics: Physics) -> np.ndarray:
    """λ in mm per layer (n_layers,): thickness in mm / thickness in λ for Cartesian layers (which know
    their z length); `hadron_lambda_per_moliere` × R_M for cylindrical ones (whose mm depth is unknown)."""
    values = []
    for layer in geometry.layers:
        z_mm = getattr(layer, "z_length_mm", None)
        if z_mm and layer.material.thickness_lambda > 0:
            values.append(z_mm / layer.material.thickness_lambda)
        else:
            values.append(physics.hadron_lambda_per_moliere * layer.material.moliere_radius_mm)
    return np.array(values)


def em_spots(
    geometry: Geometry,
    energies_mev: np.ndarray,
    start_x0: np.ndarray,
    n_spots: np.ndarray,
    particle: str,
    physics: Physics,
    rng: np.random.Generator,
) -> Spots:
    """Spots of EM showers of `energies_mev` (k,) starting at depth `start_x0` (k,), `n_spots` (k,) each."""
    profile = longitudinal.sample_em_profiles(energies_mev, particle, physics, rng)
    owner = np.repeat(np.arange(len(energies_mev)), n_spots)
    t = longitudinal.sample_depths(profile, owner, rng)
    layer = _layers_of(start_x0[owner] + t, geometry.layer_depth_x0)
    tau = np.minimum(t / profile.t_max[owner], MAX_TAU)
    rm = _moliere_mm(geometry)[layer]  # layer −1 picks the last; those spots are dropped later
    r = lateral.sample_radii(
        lateral.linear(physics.core_radius, tau) * rm,
        lateral.linear(physics.tail_radius, tau) * rm,
        lateral.em_core_fraction(physics.core_fraction, tau),
        rng,
    )
    energy = (energies_mev / np.maximum(n_spots, 1))[owner]
    return Spots(owner, layer, r, lateral.sample_azimuths(len(owner), rng), energy)


def hadron_spots(
    geometry: Geometry,
    had_energies_mev: np.ndarray,
    visible_mev: np.ndarray,
    start_lambda: np.ndarray,
    n_spots: np.ndarray,
    physics: Physics,
    rng: np.random.Generator,
) -> Spots:
    """Spots of the hadronic parts: profile from `had_energies_mev` (k,), carrying `visible_mev` (k,) in
    total, starting at `start_lambda` (k,); radii scale with the interaction length (wider than EM)."""
    profile = hadronic.sample_hadron_profiles(had_energies_mev, physics, rng)
    owner = np.repeat(np.arange(len(had_energies_mev)), n_spots)
    t = longitudinal.sample_depths(profile, owner, rng)
    layer = _layers_of(start_lambda[owner] + t, geometry.layer_depth_lambda)
    tau = np.minimum(t / profile.t_max[owner], MAX_TAU)
    lam = interaction_length_mm(geometry, physics)[layer]
    core = np.full(len(owner), physics.hadron_core_fraction)
    r = lateral.sample_radii(
        lateral.linear(physics.hadron_core_radius, tau) * lam,
        lateral.linear(physics.hadron_tail_radius, tau) * lam,
        core,
        rng,
    )
    energy = (visible_mev / np.maximum(n_spots, 1))[owner]
    return Spots(owner, layer, r, lateral.sample_azimuths(len(owner), rng), energy)


def track_spots(
    geometry: Geometry,
    first_interaction_lambda: np.ndarray,
    physics: Physics,
    rng: np.random.Generator,
) -> tuple[Spots, np.ndarray]:
    """MIP ionisation before the first interaction: one on-axis spot per layer crossed, energy
    `mip_mev_per_lambda` × path length (λ). Returns the spots and each shower's track energy (k,) MeV."""
    faces = geometry.layer_depth_lambda
    path = np.clip(first_interaction_lambda[:, None] - faces[None, :-1], 0.0, np.diff(faces)[None, :])
    energy = physics.mip_mev_per_lambda * path  # (k, L)
    shower, layer = np.nonzero(energy)
    spots = Spots(
        shower,
        layer,
        np.zeros(len(shower)),
        lateral.sample_azimuths(len(shower), rng),
        energy[shower, layer],
    )
    return spots, energy.sum(axis=1)
