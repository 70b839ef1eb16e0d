"""From spots to voxel energies: cell lookup, binning, sampling fluctuations, readout threshold.

A chunk of k showers is binned at once with one `np.bincount` over the flat index shower × n_voxels + voxel,
so memory is O(k · n_voxels + spots). Energies are on the EM scale throughout: the active layers see a
fraction f_s of the deposited energy, with a stochastic sampling term a/sqrt(E); files store visible / f_s.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from caloray.geometry import Geometry, get_geometry
from caloray.geometry.layer import CylindricalLayer


@lru_cache(maxsize=16)
def _layer_groups(geometry_name: str) -> tuple[tuple[int, ...], ...]:
    """Layer positions grouped by identical binning, so one `cell_of` call serves a whole group."""
    geometry = get_geometry(geometry_name)
    groups: dict[tuple, list[int]] = {}
    for i, layer in enumerate(geometry.layers):
        if isinstance(layer, CylindricalLayer):
            key: tuple = ("cyl", layer.r_edges_mm, layer.n_alpha)
        else:
            key = ("cart", layer.n_phi, layer.n_eta, layer.phi_cell_mm, layer.eta_cell_mm)
        groups.setdefault(key, []).append(i)
    return tuple(tuple(g) for g in groups.values())


def spot_voxels(geometry: Geometry, layer: np.ndarray, r_mm: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Flat voxel index (m,) of spots at layer position `layer`, radius r (mm) and azimuth (rad) about the
    shower axis; −1 for spots outside the readout (beyond the last layer or outside a layer's face)."""
    voxel = np.full(layer.shape, -1, dtype=np.int64)
    if geometry.kind == "cylindrical":
        u, v = r_mm, azimuth
    else:  # Cartesian: η along x, φ along y (mm)
        u, v = r_mm * np.cos(azimuth), r_mm * np.sin(azimuth)
    offsets = geometry.layer_offsets
    for group in _layer_groups(geometry.name):
        if len(group) == geometry.n_layers:
            mask = (layer >= 0) & (layer < geometry.n_layers)
        elif len(group) == 1:
            mask = layer == group[0]
        else:
            mask = np.isin(layer, group)
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            continue
        cell = geometry.layers[group[0]].cell_of(u[idx], v[idx])
        voxel[idx] = np.where(cell >= 0, cell + offsets[layer[idx]], -1)
    return voxel


def bin_spots(
    shower: np.ndarray,
    voxel: np.ndarray,
    energy_mev: np.ndarray,
    n_showers: int,
    n_voxels: int,
) -> np.ndarray:
    """Sum spot energies into a (n_showers, n_voxels) float64 array; spots with voxel −1 are dropped."""
    keep = voxel >= 0
    flat = shower[keep] * n_voxels + voxel[keep]
    summed = np.bincount(flat, weights=energy_mev[keep], minlength=n_showers * n_voxels)
    return summed.reshape(n_showers, n_voxels)


def sampling_terms(geometry: Geometry, coeff: float) -> np.ndarray:
    """Per-layer stochastic term a = coeff · sqrt((1 − f_s)/f_s) in √GeV, shape (n_layers,)."""
    fs = np.array([layer.material.sampling_fraction for layer in geometry.layers])
    return coeff * np.sqrt((1.0 - fs) / fs)


def sample_readout(
    deposited_mev: np.ndarray,
    geometry: Geometry,
    coeff: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sampling fluctuations, in place on (k, n_voxels) deposited energies; returns the same array.

    The active layers see E_vis = f_s · X with X ~ Gamma(mean E, variance a² · 1 GeV · E), so summed over a
    shower σ/E = a/sqrt(E/GeV); the stored energy is E_vis / f_s (calibrated so E_dep/E_inc ≈ 1 for EM).
    """
    fs = np.array([layer.material.sampling_fraction for layer in geometry.layers])[geometry.voxel_layer]
    var_per_mev = (1000.0 * sampling_terms(geometry, coeff) ** 2)[geometry.voxel_layer]  # MeV
    rows, cols = np.nonzero(deposited_mev)
    energy = deposited_mev[rows, cols]
    scale = var_per_mev[cols]
    visible = fs[cols] * rng.gamma(energy / scale, scale)
    deposited_mev[rows, cols] = visible / fs[cols]
    return deposited_mev


def apply_threshold(showers_mev: np.ndarray, threshold_mev: float) -> np.ndarray:
    """Zero every voxel below `threshold_mev` (stored, calibrated scale), in place; returns the array."""
    if threshold_mev > 0:
        showers_mev[showers_mev < threshold_mev] = 0.0
    return showers_mev
