"""Anomaly score of a shower: −log p(x | E_rec) under a surrogate flow, with E_rec reconstructed."""

from __future__ import annotations

import torch
from torch import Tensor

from caloray.calibrate.mle import LogLikelihood


def anomaly_scores(log_likelihood: LogLikelihood, reconstructed_energies: Tensor) -> Tensor:
    """−ℓ(E_rec) per shower, (B,); `log_likelihood(z, rows)` as in the MLE engine (z (B, 1)).

    E_rec must not be the true incident energy (science spec §5): pass e.g. the MLE E_pred or a
    regressor's prediction.
    """
    rows = torch.arange(len(reconstructed_energies), device=reconstructed_energies.device)
    return -log_likelihood(reconstructed_energies.to(torch.float64)[:, None], rows)[:, 0]
