"""Many tests at once: every (feature map × statistic) combination, summarized in one tidy table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from caloray.stats import StatisticContext
from caloray.stats.frechet import fgd_inf_fit
from caloray.stats.llr import LogDensity
from caloray.validate.design import ExperimentDesign
from caloray.validate.io import plot_null_vs_alternative, write_replicates_parquet
from caloray.validate.replicates import ArrayLike, as_feature_tensor, replicate_values

Backend = Literal["local", "ray"]


def _file_stem(feature: str, statistic: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{feature}__{statistic}")


def whole_sample_fgd_inf(reference: ArrayLike, candidate: ArrayLike, context: StatisticContext
                         ) -> tuple[float, float]:
    """FGD∞ of the whole reference (N, d) against the whole candidate (M, d) and its fit uncertainty (spec §2),
    with the test's subsampling seed: the value to quote, next to the replicate-based test of the same name."""
    fit = fgd_inf_fit(as_feature_tensor(reference), as_feature_tensor(candidate), seed=context.fgd_seed,
                      fractions=context.fgd_fractions, n_draws=context.fgd_draws)
    return float(fit.value[0]), float(fit.uncertainty[0])


def run_test_grid(
    features: Mapping[str, tuple[ArrayLike, ArrayLike]],
    statistics: Sequence[str],
    design: ExperimentDesign,
    backend: Backend = "local",
    out_dir: str | Path | None = None,
    densities: Mapping[str, tuple[LogDensity, LogDensity]] | None = None,
) -> pa.Table:
    """One row per (feature, statistic): the calibrated test and the thesis summary next to the design.

    features: name → (reference (N, d), candidate (M, d)) arrays from a feature map.
    densities: name → (log_p, log_q), needed only for "llr" (features without densities skip "llr").
    out_dir: if given, each test's replicates (<feature>__<statistic>.parquet) and histogram (.png) and the histograms
    behind it (.root).
    Columns: feature, statistic, d, n_reference, n_candidate, batch_size, n_iter, n_slices, mode, seed, chunk_size,
    the thesis summary observed (median alternative), median_p, median_sigma, power_05, power_01, the calibrated
    test (the one that gates) test_statistic, test_batch, p_value, sigma, p_floor (p at 1/(1 + n_iter): read
    "p < …", "sigma > …"), null_mean, null_std, alt_mean, alt_std, fgd_inf and fgd_inf_error (rows of "fgd-inf"
    only: `whole_sample_fgd_inf`), replicates_path, plot_path.
    """
    if backend == "ray":
        from caloray.validate.pipeline_ray import replicate_values_ray as compute
    elif backend == "local":
        compute = replicate_values
    else:
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    densities = densities or {}
    rows: list[dict[str, Any]] = []
    for feature, (reference, candidate) in features.items():
        n_ref, d = as_feature_tensor(reference).shape
        n_cand = as_feature_tensor(candidate).shape[0]
        whole = (reference, candidate)
        log_p, log_q = densities.get(feature, (None, None))
        context = design.context(d, log_p=log_p, log_q=log_q)
        if backend == "ray":  # into the object store once per feature map, shared by its statistics
            from caloray.validate.pipeline_ray import put_features

            reference, candidate = put_features(reference), put_features(candidate)
        for statistic in statistics:
            if statistic == "llr" and log_p is None:
                continue
            replicates = compute(reference, candidate, statistic, design, context)
            result = replicates.result(statistic)
            null, alt = replicates.null, replicates.alt
            estimate = whole_sample_fgd_inf(*whole, context) if statistic == "fgd-inf" else (None, None)
            replicates_path = plot_path = ""
            if out_dir is not None:
                stem = Path(out_dir) / _file_stem(feature, statistic)
                meta = {"feature": feature, "design": design.as_dict()}
                replicates_path = str(write_replicates_parquet(result, stem.with_suffix(".parquet"), meta))
                plot_path = str(plot_null_vs_alternative(result, stem.with_suffix(".png"), f"{feature}: {statistic}",
                                                         feature=feature, d=int(d), design=design.as_dict()))
            rows.append(
                {
                    "feature": feature,
                    "d": int(d),
                    "n_reference": int(n_ref),
                    "n_candidate": int(n_cand),
                    **design.as_dict(),
                    **result.summary(),
                    "null_mean": float(np.mean(null)),
                    "null_std": float(np.std(null)),
                    "alt_mean": float(np.mean(alt)),
                    "alt_std": float(np.std(alt)),
                    "fgd_inf": estimate[0],
                    "fgd_inf_error": estimate[1],
                    "replicates_path": replicates_path,
                    "plot_path": plot_path,
                }
            )
    return pa.Table.from_pylist(rows)
