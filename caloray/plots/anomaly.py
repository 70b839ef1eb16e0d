"""ROC and significance-improvement figures of anomaly scores."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from caloray.anomaly import RocCurve
from caloray.plots.summary import _save


def plot_roc_and_sic(curve: RocCurve, background: np.ndarray, signal: np.ndarray, path: Path) -> Path:
    """Score histograms, ROC (ε_S vs ε_B) and SIC = ε_S/√ε_B vs ε_B."""
    fig, (ax_h, ax_roc, ax_sic) = plt.subplots(1, 3, figsize=(14, 4))
    bins = np.linspace(min(background.min(), signal.min()), max(background.max(), signal.max()), 60)
    ax_h.hist(background, bins=bins, histtype="step", density=True, label="background")
    ax_h.hist(signal, bins=bins, histtype="step", density=True, label="signal")
    ax_h.set_xlabel("score = −log p(x | E_rec)")
    ax_h.legend(fontsize=8)
    ax_roc.plot(curve.background_efficiency, curve.signal_efficiency, label=f"AUC = {curve.auc:.3f}")
    ax_roc.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
    ax_roc.set_xlabel("ε_B")
    ax_roc.set_ylabel("ε_S")
    ax_roc.legend(fontsize=8)
    eb, sic = curve.significance_improvement(1.0 / max(len(background), 1))
    ax_sic.plot(eb, sic)
    ax_sic.set_xscale("log")
    ax_sic.axhline(1.0, color="grey", ls="--", lw=0.8)
    ax_sic.set_xlabel("ε_B")
    ax_sic.set_ylabel("ε_S / √ε_B")
    return _save(fig, path)
