"""Validation histograms with the Bayesian INN's uncertainty band (mean ± std over weight draws)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from caloray.plots.summary import _save, plt


def plot_histogram_band(band: dict[str, np.ndarray], path: Path, reference: np.ndarray | None = None,
                        xlabel: str = "", title: str = "", reference_label: str = "reference") -> Path:
    """One histogram with the generated band and, optionally, the reference histogram on the same bins.

    Args:
        band: `caloray.models.bayesian.histogram_band` output ("edges" (K + 1,), "mean", "std", "lo", "hi" (K,)).
        reference: (K,) reference histogram on `band["edges"]`, same normalization as the band.
    Draws the mean as a step line, mean ± std as a shaded band and the min–max envelope as thin lines.
    """
    edges = band["edges"]
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    lower = np.append(band["mean"] - band["std"], (band["mean"] - band["std"])[-1])
    upper = np.append(band["mean"] + band["std"], (band["mean"] + band["std"])[-1])
    ax.fill_between(edges, lower, upper, step="post", alpha=0.35, color="C1", label="BINN mean ± std")
    ax.stairs(band["mean"], edges, color="C1", label="BINN mean")
    ax.stairs(band["lo"], edges, color="C1", lw=0.5, ls=":")
    ax.stairs(band["hi"], edges, color="C1", lw=0.5, ls=":", label="BINN min–max")
    if reference is not None:
        ax.stairs(np.asarray(reference), edges, color="k", label=reference_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(fig, Path(path))
