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
from caloray.geometry import Geometry
from caloray.plots.summary import _save

#: Colours of the samples: the reference is filled, every other sample a step line.
_COLOURS = {"reference": "C0", "strict": "C1", "oracle": "C2"}


def layer_radial_moments(showers: np.ndarray, geometry: Geometry, layer_index: int) -> dict[str, np.ndarray]:
    """Energy (MeV), energy-weighted radial centroid and RMS radial width (mm) of one layer (0-based), each (N,)."""
    part = np.asarray(showers[:, geometry.layer_slice(layer_index)], dtype=np.float64)
    r = geometry.voxel_centres[0][geometry.layer_slice(layer_index)]
    centroid, width = weighted_moments(part, r)
    return {"energy": part.sum(axis=1), "centroid": centroid, "width": width}


def _hist(ax: plt.Axes, samples: Mapping[str, np.ndarray], log: bool) -> None:
    finite = {k: v[np.isfinite(v)] for k, v in samples.items()}
    values = {k: (v[v > 0] if log else v) for k, v in finite.items()}
    pooled = np.concatenate([v for v in values.values() if v.size] or [np.zeros(0)])
    if pooled.size == 0:
        ax.text(0.5, 0.5, "no energy", ha="center", va="center", transform=ax.transAxes)
        return
    lo, hi = np.quantile(pooled, [0.001, 0.999])
    if log:
        bins = np.geomspace(max(lo, 1e-9), max(hi, lo * 1.01, 1e-9 * 1.01), 40)
        ax.set_xscale("log")
    else:
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 40)
    for label, v in values.items():
        colour = _COLOURS.get(label, None)
        if label == "reference":
            ax.hist(v, bins=bins, density=True, color=colour, alpha=0.35, label=label)
        else:
            ax.hist(v, bins=bins, density=True, histtype="step", color=colour, lw=1.4, label=label)


def plot_layer_distributions(samples: Mapping[str, np.ndarray], geometry: Geometry, layers: Sequence[int],
                             path: Path) -> Path:
    """Layer energy, radial centroid and radial width of the given 1-based `layers`, one column per layer.

    `samples` maps a label ("reference", "strict", "oracle", …) to showers (N, n_voxels) MeV.
    """
    fig, axes = plt.subplots(3, len(layers), figsize=(3.3 * len(layers), 8.0), squeeze=False)
    rows = (("energy", "E_layer [GeV]", True), ("centroid", "radial centroid [mm]", False),
            ("width", "radial width [mm]", False))
    for col, layer in enumerate(layers):
        moments = {k: layer_radial_moments(v, geometry, int(layer) - 1) for k, v in samples.items()}
        for row, (key, label, log) in enumerate(rows):
            ax = axes[row, col]
            scale = 1e-3 if key == "energy" else 1.0
            _hist(ax, {k: m[key] * scale for k, m in moments.items()}, log)
            ax.set_xlabel(label, fontsize=8)
            if row == 0:
                ax.set_title(f"layer {layer} (index {int(layer) - 1})", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)


def plot_shower_shapes(samples: Mapping[str, np.ndarray], geometry: Geometry, path: Path) -> Path:
    """Whole-shower centroids and RMS widths in r, α and z (thesis Eq. 4.6–4.7, Fig. 4.12)."""
    moments = {k: centroids_and_widths(v, geometry) for k, v in samples.items()}
    names = sorted(next(iter(moments.values())))
    fig, axes = plt.subplots(2, 3, figsize=(10.5, 5.8), squeeze=False)
    for ax, name in zip(axes.flat, sorted(names, key=lambda n: (not n.startswith("centroid"), n)), strict=False):
        _hist(ax, {k: m[name] for k, m in moments.items()}, log=False)
        ax.set_xlabel(name, fontsize=8)
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)


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
