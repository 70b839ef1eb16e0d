"""ROC/AUC against the Mann–Whitney statistic and the analytic Gaussian case; scores from a likelihood."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu, norm

from caloray.anomaly import anomaly_scores, roc_curve


def test_auc_equals_mann_whitney_u_with_ties():
    rng = np.random.default_rng(0)
    bkg = rng.integers(0, 20, 700).astype(float)  # many ties
    sig = rng.integers(3, 25, 500).astype(float)
    u = mannwhitneyu(sig, bkg).statistic / (len(sig) * len(bkg))
    assert roc_curve(bkg, sig).auc == pytest.approx(u, rel=1e-12)


def test_gaussian_auc_and_sic():
    rng = np.random.default_rng(1)
    shift = 1.0
    curve = roc_curve(rng.normal(0, 1, 200_000), rng.normal(shift, 1, 200_000))
    assert curve.auc == pytest.approx(norm.cdf(shift / math.sqrt(2)), abs=3e-3)
    eb, sic = curve.significance_improvement(1e-3)
    # at ε_B = Q(t), ε_S = Q(t − shift): check one point analytically
    i = np.argmin(np.abs(eb - 0.1))
    t = norm.isf(eb[i])
    assert sic[i] == pytest.approx(norm.sf(t - shift) / math.sqrt(eb[i]), rel=0.02)
    assert curve.signal_efficiency[-1] == 1.0 and curve.background_efficiency[-1] == 1.0


def test_bad_scores():
    with pytest.raises(ValueError, match="NaN"):
        roc_curve(np.array([0.0, np.nan]), np.array([1.0]))
    with pytest.raises(ValueError, match="non-empty"):
        roc_curve(np.array([]), np.array([1.0]))


def test_anomaly_score_is_negative_log_likelihood_at_reconstructed_energy():
    x = torch.tensor([1.0, 3.0], dtype=torch.float64)

    def log_likelihood(z, rows):
        return -0.5 * (x[rows, None] - z) ** 2 - 0.5 * math.log(2 * math.pi)

    scores = anomaly_scores(log_likelihood, torch.tensor([1.0, 1.0]))
    assert scores.tolist() == pytest.approx([0.5 * math.log(2 * math.pi), 2.0 + 0.5 * math.log(2 * math.pi)])
