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
    """One log-x histogram panel per layer (at most 12, evenly spread) of the layer energies in GeV, with per-bin
    statistical errors; zero-energy showers sit in the underflow bin, their fraction in each panel's title.
    The histograms go to a `.root` file beside the PNG."""
    from caloray.plots.features import Panel, plot_comparison_grid

    n_layers = layer_energies_mev.shape[1]
    shown = range(n_layers) if n_layers <= 12 else np.linspace(0, n_layers - 1, 12).round().astype(int)
    panels = [Panel("E_layer", "GeV", {"showers": layer_energies_mev[:, layer] / 1e3}, log=True,
                    title=f"layer {layer}") for layer in shown]
    return plot_comparison_grid(panels, path, title=title or "layer energies", n_cols=4 if len(panels) > 6 else 3)


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
