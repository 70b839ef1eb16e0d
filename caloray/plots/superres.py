"""Figures of the super-resolution study (analogues of the thesis' Figs. 4.12–4.13 and Table 4.6–4.7).

Layers are given 1-based as in the thesis (layer 1 … 45 of ds2); layer k is voxel layer index k − 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from caloray.features.highlevel import centroids_and_widths, weighted_moments
from caloray.features.maps import feature_columns
from caloray.geometry import Geometry
from caloray.plots.features import Panel, plot_comparison_grid
from caloray.plots.summary import _save


def layer_radial_moments(showers: np.ndarray, geometry: Geometry, layer_index: int) -> dict[str, np.ndarray]:
    """Energy (MeV), energy-weighted radial centroid and RMS radial width (mm) of one layer (0-based), each (N,)."""
    part = np.asarray(showers[:, geometry.layer_slice(layer_index)], dtype=np.float64)
    r = geometry.voxel_centres[0][geometry.layer_slice(layer_index)]
    centroid, width = weighted_moments(part, r)
    return {"energy": part.sum(axis=1), "centroid": centroid, "width": width}


def plot_layer_distributions(samples: Mapping[str, np.ndarray], geometry: Geometry, layers: Sequence[int],
                             path: Path) -> Path:
    """Layer energy, radial centroid and radial width of the given 1-based `layers`, one column per layer, each
    against the reference with a ratio panel (histograms in a `.root` beside the PNG).

    `samples` maps a label ("reference", "strict", "oracle", …) to showers (N, n_voxels) MeV, the reference first.
    """
    rows = (("energy", "E_layer", "GeV", True), ("centroid", "radial centroid", "mm", False),
            ("width", "radial width", "mm", False))
    moments = {layer: {k: layer_radial_moments(v, geometry, int(layer) - 1) for k, v in samples.items()}
               for layer in layers}
    panels = [Panel(quantity, unit, {k: m[key] * (1e-3 if key == "energy" else 1.0)
                                     for k, m in moments[layer].items()},
                    log=log, title=f"layer {layer} (index {int(layer) - 1})")
              for key, quantity, unit, log in rows for layer in layers]
    return plot_comparison_grid(panels, path, title=f"{geometry.name} layer distributions", n_cols=len(layers))


def plot_shower_shapes(samples: Mapping[str, np.ndarray], geometry: Geometry, path: Path) -> Path:
    """Whole-shower centroids and RMS widths in r, α and z (thesis Eq. 4.6–4.7, Fig. 4.12), with ratio panels."""
    moments = {k: centroids_and_widths(v, geometry) for k, v in samples.items()}
    columns = feature_columns("shower-shape", 6, geometry)
    names = sorted(next(iter(moments.values())))  # the order of `feature_columns`
    order = sorted(range(len(names)), key=lambda i: (not names[i].startswith("centroid"), names[i]))
    panels = [Panel(columns[i][0], columns[i][1], {k: m[names[i]] for k, m in moments.items()}) for i in order]
    return plot_comparison_grid(panels, path, title=f"{geometry.name} shower shapes", n_cols=3)


def plot_pvalue_heatmap(rows: Sequence[Mapping], variant: str, path: Path, alpha: float = 0.05) -> Path:
    """p-values of one variant: rows (feature, statistic) × columns batch size; cells below α are outlined."""
    sel = [r for r in rows if r["variant"] == variant]
    keys = list(dict.fromkeys((r["feature"], r["statistic"]) for r in sel))
    batches = sorted({int(r["batch_size"]) for r in sel})
    grid = np.full((len(keys), len(batches)), np.nan)
    for r in sel:
        grid[keys.index((r["feature"], r["statistic"])), batches.index(int(r["batch_size"]))] = r["p_value"]
    fig, ax = plt.subplots(figsize=(2.2 + 1.3 * len(batches), 1.2 + 0.32 * len(keys)))
    if keys:
        finite = grid[np.isfinite(grid)]
        vmin = min(float(finite.min()) if finite.size else 1e-3, alpha / 10)
        image = ax.imshow(grid, aspect="auto", cmap="viridis", norm=LogNorm(vmin=vmin, vmax=1.0))
        fig.colorbar(image, ax=ax, label="p-value")
        for i in range(len(keys)):
            for j in range(len(batches)):
                p = grid[i, j]
                if np.isfinite(p):
                    ax.text(j, i, f"{p:.2g}", ha="center", va="center", fontsize=7,
                            color="red" if p <= alpha else "white")
        ax.set_yticks(range(len(keys)), [f"{f} / {s}" for f, s in keys], fontsize=7)
        ax.set_xticks(range(len(batches)), [str(b) for b in batches], fontsize=8)
    ax.set_xlabel("batch size")
    ax.set_title(f"{variant}: p-values (red: ≤ α = {alpha:g})", fontsize=9)
    return _save(fig, path)
