"""High-level shower features: layer energies, totals, response, centroids, widths, hit counts."""

from caloray.features.highlevel import (
    centroids_and_widths,
    compute_features,
    hit_counts,
    layer_centroids_and_widths,
    layer_energies,
    response,
    shower_axes,
    total_energy,
    weighted_moments,
)
from caloray.features.summary import response_table

__all__ = [
    "centroids_and_widths",
    "compute_features",
    "hit_counts",
    "layer_centroids_and_widths",
    "layer_energies",
    "response",
    "response_table",
    "shower_axes",
    "total_energy",
    "weighted_moments",
]
