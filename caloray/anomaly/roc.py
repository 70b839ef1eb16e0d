"""ROC curve, AUC and significance improvement for anomaly scores (science spec §5).

Higher score = more anomalous. Signal efficiency ε_S and background efficiency ε_B are the fractions of
signal/background showers with score ≥ a threshold; SIC = ε_S / sqrt(ε_B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RocCurve:
    """Efficiencies at every distinct threshold (descending), each (T,)."""

    thresholds: np.ndarray
    signal_efficiency: np.ndarray
    background_efficiency: np.ndarray

    @property
    def auc(self) -> float:
        """Area under ε_S(ε_B) (trapezoidal; ties count one half, as the Mann–Whitney statistic)."""
        x = np.concatenate([[0.0], self.background_efficiency])
        y = np.concatenate([[0.0], self.signal_efficiency])
        return float(np.trapezoid(y, x))

    def significance_improvement(self, min_background_efficiency: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
        """(ε_B, ε_S / sqrt(ε_B)) where ε_B ≥ `min_background_efficiency` (avoids 0/0 at the tip)."""
        keep = self.background_efficiency >= min_background_efficiency
        eb = self.background_efficiency[keep]
        return eb, self.signal_efficiency[keep] / np.sqrt(eb)


def roc_curve(background_scores: np.ndarray, signal_scores: np.ndarray) -> RocCurve:
    """Exact ROC from two score samples (NaN scores are an error)."""
    bkg = np.asarray(background_scores, dtype=np.float64).ravel()
    sig = np.asarray(signal_scores, dtype=np.float64).ravel()
    if bkg.size == 0 or sig.size == 0:
        raise ValueError("roc_curve needs non-empty background and signal samples")
    if not (np.isfinite(bkg).all() and np.isfinite(sig).all()):
        raise ValueError("roc_curve: scores contain NaN or inf")
    thresholds = np.unique(np.concatenate([bkg, sig]))[::-1]
    # Fraction with score ≥ t, via sorted search.
    bkg_sorted, sig_sorted = np.sort(bkg), np.sort(sig)
    eff_b = 1.0 - np.searchsorted(bkg_sorted, thresholds, side="left") / bkg.size
    eff_s = 1.0 - np.searchsorted(sig_sorted, thresholds, side="left") / sig.size
    return RocCurve(thresholds, eff_s, eff_b)
