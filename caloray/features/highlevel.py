"""Per-shower high-level features as vectorized numpy (usable inside Ray Data `map_batches`).

Conventions: showers are (N, n_voxels) in MeV; positions are voxel centres (r in mm, α in rad for
cylindrical geometries; η, φ in mm for Cartesian ones); the longitudinal coordinate z is the layer
position 0 … L−1. Energy-weighted moments of a shower (or layer) with no energy are 0.
"""

from __future__ import annotations

import numpy as np

from caloray.geometry import Geometry


def layer_energies(showers: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Energy per layer, (N, n_layers) MeV, float64 (layers are contiguous voxel ranges)."""
    return np.add.reduceat(np.asarray(showers, dtype=np.float64), geometry.layer_offsets[:-1], axis=1)


def total_energy(showers: np.ndarray) -> np.ndarray:
    """Total deposited energy per shower, (N,) MeV."""
    return np.asarray(showers, dtype=np.float64).sum(axis=1)


def response(showers: np.ndarray, incident_energies_mev: np.ndarray) -> np.ndarray:
    """E_dep / E_inc per shower, (N,)."""
    return total_energy(showers) / np.asarray(incident_energies_mev, dtype=np.float64).reshape(-1)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def weighted_moments(showers: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Energy-weighted mean and RMS width of a per-voxel `position` (V,), each (N,)."""
    weights = np.asarray(showers, dtype=np.float64)
    total = weights.sum(axis=1)
    mean = _safe_divide(weights @ position, total)
    second = _safe_divide(weights @ (position**2), total)
    return mean, np.sqrt(np.clip(second - mean**2, 0.0, None))


def shower_axes(geometry: Geometry) -> dict[str, np.ndarray]:
    """Per-voxel coordinates used for shower moments: {"r","alpha","z"} or {"eta","phi","z"}."""
    u, v = geometry.voxel_centres
    z = geometry.voxel_layer.astype(np.float64)
    if geometry.kind == "cylindrical":
        return {"r": u, "alpha": v, "z": z}
    return {"eta": u, "phi": v, "z": z}


def centroids_and_widths(showers: np.ndarray, geometry: Geometry) -> dict[str, np.ndarray]:
    """Whole-shower centroids and RMS widths (thesis Eq. 4.6–4.7): `centroid_<axis>`, `width_<axis>`."""
    out: dict[str, np.ndarray] = {}
    for axis, position in shower_axes(geometry).items():
        out[f"centroid_{axis}"], out[f"width_{axis}"] = weighted_moments(showers, position)
    return out


def layer_centroids_and_widths(showers: np.ndarray, geometry: Geometry) -> dict[str, np.ndarray]:
    """Per-layer centroids and widths in η (x) and φ (y), CaloChallenge-style, each (N, n_layers).

    For cylindrical geometries x = r cos α and y = r sin α of the voxel centres (mm).
    """
    x, y = geometry.voxel_xy_mm
    weights = np.asarray(showers, dtype=np.float64)
    offsets = geometry.layer_offsets[:-1]
    energy = np.add.reduceat(weights, offsets, axis=1)
    out: dict[str, np.ndarray] = {}
    for name, position in (("eta", x), ("phi", y)):
        mean = _safe_divide(np.add.reduceat(weights * position, offsets, axis=1), energy)
        second = _safe_divide(np.add.reduceat(weights * position**2, offsets, axis=1), energy)
        out[f"layer_centroid_{name}"] = mean
        out[f"layer_width_{name}"] = np.sqrt(np.clip(second - mean**2, 0.0, None))
    return out


def hit_counts(showers: np.ndarray, threshold_mev: float = 0.0) -> np.ndarray:
    """Voxels per shower with energy strictly above `threshold_mev`, (N,)."""
    return (np.asarray(showers) > threshold_mev).sum(axis=1)


def compute_features(
    showers: np.ndarray,
    incident_energies_mev: np.ndarray,
    geometry: Geometry,
    *,
    hit_threshold_mev: float | None = None,
) -> dict[str, np.ndarray]:
    """All high-level features of a batch as a column dict (scalars (N,), per-layer (N, L)).

    `hit_threshold_mev` defaults to the geometry's readout threshold when it has one, else 0.
    """
    if hit_threshold_mev is None:
        hit_threshold_mev = float(geometry.attributes.get("readout_threshold_mev", 0.0))
    energies = np.asarray(incident_energies_mev, dtype=np.float64).reshape(-1)
    e_dep = total_energy(showers)
    return {
        "incident_energy_mev": energies,
        "total_energy_mev": e_dep,
        "response": e_dep / energies,
        "layer_energies_mev": layer_energies(showers, geometry),
        "n_hits": hit_counts(showers, hit_threshold_mev),
        **centroids_and_widths(showers, geometry),
        **layer_centroids_and_widths(showers, geometry),
    }
