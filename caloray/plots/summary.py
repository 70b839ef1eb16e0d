"""Summary figures of a shower sample: layer-energy and E_dep/E_inc distributions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_layer_energies(layer_energies_mev: np.ndarray, path: Path, title: str = "") -> Path:
    """One log-x histogram panel per layer of the layer energies in GeV."""
    n_layers = layer_energies_mev.shape[1]
    shown = range(n_layers) if n_layers <= 12 else np.linspace(0, n_layers - 1, 12).round().astype(int)
    n_cols = 4 if len(shown) > 6 else 3
    n_rows = int(np.ceil(len(shown) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols, 2.6 * n_rows), squeeze=False)
    for ax, layer in zip(axes.flat, shown, strict=False):
        values = layer_energies_mev[:, layer] / 1e3
        positive = values[values > 0]
        if positive.size:
            bins = np.geomspace(max(positive.min(), 1e-6), positive.max() * 1.01, 50)
            ax.hist(positive, bins=bins, histtype="step", color="C0")
            ax.set_xscale("log")
        ax.set_title(f"layer {layer}  (zero: {np.mean(values <= 0):.0%})", fontsize=9)
        ax.set_xlabel("E_layer [GeV]", fontsize=8)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.suptitle(title or "layer energies")
    return _save(fig, path)


def plot_response(incident_energies_mev: np.ndarray, response: np.ndarray, path: Path, title: str = "") -> Path:
    """E_dep/E_inc histogram and E_dep vs E_inc 2-D histogram."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.hist(response, bins=80, histtype="step", color="C1")
    left.axvline(1.0, color="grey", lw=0.8, ls="--")
    left.set_xlabel("E_dep / E_inc")
    left.set_ylabel("showers")
    left.set_title(f"mean {response.mean():.3f}, rms {response.std():.3f}", fontsize=9)
    e_inc = incident_energies_mev / 1e3
    right.hist2d(e_inc, response * e_inc, bins=60, cmap="viridis", cmin=1, norm=LogNorm())
    right.set_xlabel("E_inc [GeV]")
    right.set_ylabel("E_dep [GeV]")
    fig.suptitle(title or "response")
    return _save(fig, path)
