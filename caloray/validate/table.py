"""Many tests at once: every (feature map × statistic) combination, summarized in one tidy table."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from caloray.stats.llr import LogDensity
from caloray.validate.design import ExperimentDesign
from caloray.validate.io import plot_null_vs_alternative, write_replicates_parquet
from caloray.validate.replicates import ArrayLike, as_feature_tensor, null_and_alternative
from caloray.validate.summary import summarize

Backend = Literal["local", "ray"]


def _file_stem(feature: str, statistic: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{feature}__{statistic}")


def run_test_grid(
    features: Mapping[str, tuple[ArrayLike, ArrayLike]],
    statistics: Sequence[str],
    design: ExperimentDesign,
    backend: Backend = "local",
    out_dir: str | Path | None = None,
    densities: Mapping[str, tuple[LogDensity, LogDensity]] | None = None,
) -> pa.Table:
    """One row per (feature, statistic): the test summary next to the design that produced it.

    features: name → (reference (N, d), candidate (M, d)) arrays from a feature map.
    densities: name → (log_p, log_q), needed only for "llr" (features without densities skip "llr").
    out_dir: if given, each test's replicates (<feature>__<statistic>.parquet), histogram (.png) and the
    histograms behind it (.root).
    Columns: feature, statistic, d, n_reference, n_candidate, batch_size, n_iter, n_slices, mode, seed,
    observed, p_value, sigma, power_05, power_01, null_mean, null_std, alt_mean, alt_std,
    replicates_path, plot_path.
    """
    if backend == "ray":
        from caloray.validate.pipeline_ray import null_and_alternative_ray as compute
    elif backend == "local":
        compute = null_and_alternative
    else:
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    densities = densities or {}
    rows: list[dict[str, Any]] = []
    for feature, (reference, candidate) in features.items():
        n_ref, d = as_feature_tensor(reference).shape
        n_cand = as_feature_tensor(candidate).shape[0]
        log_p, log_q = densities.get(feature, (None, None))
        context = design.context(d, log_p=log_p, log_q=log_q)
        if backend == "ray":  # into the object store once per feature map, shared by its statistics
            from caloray.validate.pipeline_ray import put_features

            reference, candidate = put_features(reference), put_features(candidate)
        for statistic in statistics:
            if statistic == "llr" and log_p is None:
                continue
            null, alt = compute(reference, candidate, statistic, design, context)
            result = summarize(null, alt, statistic)
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
                    "replicates_path": replicates_path,
                    "plot_path": plot_path,
                }
            )
    return pa.Table.from_pylist(rows)
