"""Calibration by maximum likelihood: batched E_pred with per-shower resolution, bias/resolution metrics."""

from caloray.calibrate.metrics import ModeEstimate, bias_table, bootstrap_mode, full_resolution, kde_mode
from caloray.calibrate.mle import (
    FLAG_AT_LOWER_EDGE,
    FLAG_AT_UPPER_EDGE,
    FLAG_NO_LOWER_CROSSING,
    FLAG_NO_UPPER_CROSSING,
    FLAG_NON_FINITE,
    LogLikelihood,
    MLEResult,
    MLESettings,
    find_mle,
)

__all__ = [
    "FLAG_AT_LOWER_EDGE",
    "FLAG_AT_UPPER_EDGE",
    "FLAG_NON_FINITE",
    "FLAG_NO_LOWER_CROSSING",
    "FLAG_NO_UPPER_CROSSING",
    "LogLikelihood",
    "MLEResult",
    "MLESettings",
    "ModeEstimate",
    "bias_table",
    "bootstrap_mode",
    "find_mle",
    "full_resolution",
    "kde_mode",
]
