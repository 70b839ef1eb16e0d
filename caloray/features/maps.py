"""Feature maps for two-sample tests: a batch of showers → an (N, d) float64 matrix (science spec §2)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from caloray.errors import GeometryError
from caloray.features.highlevel import (
    centroids_and_widths,
    layer_centroids_and_widths,
    layer_energies,
    shower_axes,
    total_energy,
)
from caloray.geometry import DS2_COARSE_CHOICES, Geometry

FeatureMap = Callable[[np.ndarray, np.ndarray, Geometry], np.ndarray]


def voxels(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The full voxel vector, (N, n_voxels) MeV."""
    return np.asarray(showers, dtype=np.float64)


def voxels_normalized(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The CaloChallenge classifier's voxel input: voxels / E_inc (dimensionless) and log10(E_inc / MeV) as the
    last column, (N, n_voxels + 1). Dividing by E_inc puts showers of all energies on one scale; the extra
    column keeps the energy dependence visible to the classifier."""
    energies = np.asarray(incident_energies_mev, dtype=np.float64).reshape(-1)
    if energies.size != len(showers):
        raise ValueError(f"voxels-normalized: {len(showers)} showers but {energies.size} incident energies")
    if not np.all(energies > 0):
        raise ValueError("voxels-normalized: incident energies must be > 0 MeV")
    return np.concatenate([np.asarray(showers, dtype=np.float64) / energies[:, None], np.log10(energies)[:, None]],
                          axis=1)


def coarse_voxels(choice: str | None = None) -> FeatureMap:
    """Coarse voxel energies (N, n_coarse) MeV via the geometry's coarse-graining map.

    `choice` "A"/"B" are the dataset-2 voxelizations (spec §4); None → A for ds2, else 2 α bins per group
    (regular cylindrical geometries only).
    """

    def feature(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
        if choice is not None:
            if geometry.n_voxels != 6480:
                raise GeometryError(f"coarse choice {choice!r} is defined for dataset 2, not {geometry.name!r}")
            groups = DS2_COARSE_CHOICES[choice]
        else:
            groups = DS2_COARSE_CHOICES["A"] if geometry.n_voxels == 6480 else (1, 2, 1)
        mapping = geometry.coarse_map(*groups)
        n_coarse = int(mapping.max()) + 1
        out = np.zeros((len(showers), n_coarse))
        np.add.at(out.T, mapping, np.asarray(showers, dtype=np.float64).T)
        return out

    return feature


def total(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Total deposited energy, (N, 1) MeV."""
    return total_energy(showers)[:, None]


def layers(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Layer energies, (N, n_layers) MeV."""
    return layer_energies(showers, geometry)


def shower_shape(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Energy-weighted centroids and RMS widths along the three axes (thesis Eq. 4.6–4.7), (N, 6)."""
    moments = centroids_and_widths(showers, geometry)
    return np.stack([moments[k] for k in sorted(moments)], axis=1)


def calochallenge(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry) -> np.ndarray:
    """CaloChallenge high-level features: layer energies and per-layer η/φ centroids and widths, (N, 5L)."""
    per_layer = layer_centroids_and_widths(showers, geometry)
    return np.concatenate([layer_energies(showers, geometry), *(per_layer[k] for k in sorted(per_layer))], axis=1)


FEATURE_MAPS: dict[str, FeatureMap] = {
    "voxels": voxels,
    "voxels-normalized": voxels_normalized,
    "coarse": coarse_voxels(),
    "coarse-A": coarse_voxels("A"),
    "coarse-B": coarse_voxels("B"),
    "total-energy": total,
    "layer-energies": layers,
    "shower-shape": shower_shape,
    "calochallenge": calochallenge,
}


def feature_map(name: str) -> FeatureMap:
    """The feature map called `name`; unknown names list the valid ones."""
    if name not in FEATURE_MAPS:
        raise KeyError(f"unknown feature map {name!r}; choose from {', '.join(FEATURE_MAPS)}")
    return FEATURE_MAPS[name]


#: Units of the shower-moment axes (`shower_axes`): the per-voxel positions they are weighted over.
_AXIS_UNITS = {"r": "mm", "alpha": "rad", "eta": "mm", "phi": "mm", "z": "layer"}


def feature_columns(name: str, d: int, geometry: Geometry) -> list[tuple[str, str, bool]]:
    """(quantity, unit, energy-like) of each of the d columns of feature map `name` on `geometry`.

    Energy-like columns are non-negative deposits in MeV that span decades (drawn on log axes).
    """
    if name == "total-energy":
        return [("E_total", "MeV", True)]
    if name == "layer-energies":
        return [(f"E_layer {i}", "MeV", True) for i in range(d)]
    if name == "shower-shape":
        axes = sorted(f"{kind}_{axis}" for kind in ("centroid", "width") for axis in shower_axes(geometry))
        return [(key.replace("_", " "), _AXIS_UNITS[key.split("_")[1]], False) for key in axes]
    if name == "calochallenge":
        n = d // 5
        moments = [(f"{k.replace('_', ' ')} {i}", "mm", False) for k in ("centroid_eta", "centroid_phi",
                                                                            "width_eta", "width_phi")
                   for i in range(n)]
        return [(f"E_layer {i}", "MeV", True) for i in range(n)] + moments
    return [(f"{name} {i}", "MeV", True) for i in range(d)]  # voxels and coarse voxels: energies in MeV
