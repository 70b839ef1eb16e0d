"""Anomaly scores −log p(x | E_rec) and their ROC / AUC / significance-improvement evaluation."""

from caloray.anomaly.roc import RocCurve, roc_curve
from caloray.anomaly.scores import anomaly_scores

__all__ = ["RocCurve", "anomaly_scores", "roc_curve"]
