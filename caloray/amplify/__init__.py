"""Amplification study (issue 5): how many truth events is a generator trained on n events worth?

Truth with known CDF (`truth`), quantile MSE and amplification factors (`metrics`), the 5-parameter fit
benchmark (`fit`), 1-D flows and ensembles (`generator`), and the Ray-parallel study (`study`).
"""

from caloray.amplify.config import AmplificationConfig, TruthConfig, load_amplification_config
from caloray.amplify.fit import MixtureFit, fit_two_gaussians
from caloray.amplify.generator import (
    EnsembleGenerator,
    FlowConfig,
    FlowGenerator,
    ResampleGenerator,
    build_flow,
    ensemble_shares,
    train_flow,
)
from caloray.amplify.metrics import (
    AmplificationEstimate,
    amplification_factor,
    equivalent_truth_events,
    fit_mse_curve,
    quantile_fractions,
    quantile_mse,
    sample_quantile_mse,
    summarize_amplification,
    truth_mse,
)
from caloray.amplify.study import AmplificationResult, run_amplification, run_repetition
from caloray.amplify.truth import GaussianMixture, camel_back

__all__ = [
    "AmplificationConfig",
    "AmplificationEstimate",
    "AmplificationResult",
    "EnsembleGenerator",
    "FlowConfig",
    "FlowGenerator",
    "GaussianMixture",
    "MixtureFit",
    "ResampleGenerator",
    "TruthConfig",
    "amplification_factor",
    "build_flow",
    "camel_back",
    "ensemble_shares",
    "equivalent_truth_events",
    "fit_mse_curve",
    "fit_two_gaussians",
    "load_amplification_config",
    "quantile_fractions",
    "quantile_mse",
    "run_amplification",
    "run_repetition",
    "sample_quantile_mse",
    "summarize_amplification",
    "train_flow",
    "truth_mse",
]
