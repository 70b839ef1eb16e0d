"""What a validation run reports: the tidy table of every (feature map × statistic × batch size) test on
in-memory feature matrices, its printed rows and the PASS/FAIL verdicts (calibrated tests at a Bonferroni level,
the classifier metric's max_auc gate). Used by `caloray validate`, the generation run's automatic validation and
the super-resolution study.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from caloray.stats.classifier import ClassifierConfig
from caloray.validate.classifier import CLASSIFIER, run_classifier_grid
from caloray.validate.design import ExperimentDesign
from caloray.validate.summary import format_p, format_sigma, p_floor
from caloray.validate.table import run_test_grid

#: Printed columns: the calibrated test (p_value, sigma: the ones that gate) first, then the thesis summary
#: (observed = median alternative replicate, median_p = its p-value, a summary and not a test; power).
SUMMARY_COLUMNS = ("feature", "statistic", "d", "batch_size", "p_value", "sigma", "observed", "median_p", "power_05",
                   "power_01")


def validate_arrays(features: Mapping[str, tuple[np.ndarray, np.ndarray]], statistics: list[str],
                    batch_sizes: list[int], *, n_iter: int = 500, n_slices: int = 100, seed: int = 0,
                    mode: str = "bootstrap", backend: str = "local", out_dir: str | Path | None = None,
                    classifier: ClassifierConfig | None = None, max_auc: float | None = None) -> pa.Table:
    """Every (feature × statistic × batch size) test on in-memory feature matrices; one tidy table.

    "classifier" in `statistics` adds one row per feature map (`classifier` settings, default ClassifierConfig
    with `seed`; calibration plots under out_dir/classifier); its columns are null in the other rows and
    vice versa.
    """
    tables = []
    two_sample = [s for s in statistics if s != CLASSIFIER]
    if two_sample:
        for batch_size in batch_sizes:
            design = ExperimentDesign(batch_size=batch_size, n_iter=n_iter, n_slices=n_slices, seed=seed, mode=mode)
            sub = None if out_dir is None else Path(out_dir) / f"batch-{batch_size}"
            tables.append(run_test_grid(features, two_sample, design, backend=backend, out_dir=sub))
    if CLASSIFIER in statistics:
        settings = classifier if classifier is not None else ClassifierConfig(seed=seed)
        sub = None if out_dir is None else Path(out_dir) / CLASSIFIER
        tables.append(run_classifier_grid(features, settings, backend=backend, out_dir=sub, max_auc=max_auc))
    return pa.concat_tables(tables, promote_options="default")


def bonferroni_threshold(alpha: float, n_tests: int) -> float:
    """alpha / n_tests: each test's level for a family-wise error ≤ alpha."""
    return alpha / max(n_tests, 1)


def summary_rows(table: pa.Table, threshold: float | None = None) -> list[dict]:
    """The columns people read first, as rows for `format_table`; p-values at the empirical floor read "< p" and
    their sigma "> s"; with `threshold`, a verdict column (pass / FAIL: calibrated p below the threshold). With
    classifier rows also AUC ± err, JSD ± err (bits) and their max_auc gate ("-" where a column does not apply)."""
    rows = []
    with_fgd_inf = "fgd_inf" in table.column_names and any(v is not None for v in table["fgd_inf"].to_pylist())
    with_classifier = "auc" in table.column_names
    for row in table.to_pylist():
        is_classifier = row["statistic"] == CLASSIFIER
        out = {k: "-" if row.get(k) is None else row[k] for k in SUMMARY_COLUMNS}
        if with_fgd_inf:  # the whole-sample FGD∞ and its fit uncertainty, on the rows of "fgd-inf"
            out["fgd_inf"] = "" if row["fgd_inf"] is None else f"{row['fgd_inf']:.4g} ± {row['fgd_inf_error']:.2g}"
        if not is_classifier:
            out["p_value"] = format_p(row["p_value"], row["p_floor"])
            out["sigma"] = format_sigma(row["sigma"], row["p_floor"])
            out["median_p"] = format_p(row["median_p"], row["median_p"] <= p_floor(row["n_iter"]))
        if threshold is not None:
            out["verdict"] = "-" if is_classifier else "pass" if row["p_value"] >= threshold else "FAIL"
        if with_classifier:
            out["auc ± err"] = f"{row['auc']:.4f} ± {row['auc_err']:.4f}" if is_classifier else "-"
            out["jsd[bits] ± err"] = f"{row['jsd']:.4f} ± {row['jsd_err']:.4f}" if is_classifier else "-"
            out["gate"] = {True: "PASS", False: "FAIL", None: "-"}[row.get("passed")] if is_classifier else "-"
        rows.append(out)
    return rows


def two_sample_rows(table: pa.Table) -> pa.Table:
    """The rows of the calibrated two-sample tests (not the classifier metric, which gates by max_auc)."""
    if "statistic" not in table.column_names:
        return table
    keep = [s != CLASSIFIER for s in table["statistic"].to_pylist()]
    return table.filter(pa.array(keep, type=pa.bool_()))


def verdict_line(table: pa.Table, alpha: float, n_iter: int) -> str:
    """The PASS/FAIL line of a test table: PASS when every calibrated p-value is ≥ alpha / number of tests."""
    table = two_sample_rows(table)
    threshold = bonferroni_threshold(alpha, table.num_rows)
    failed = sum(p < threshold for p in table["p_value"].to_pylist())
    line = (f"{'PASS' if failed == 0 else 'FAIL'}: {failed} of {table.num_rows} calibrated tests below "
            f"{threshold:.3g} = {alpha:g}/{table.num_rows} (family-wise α = {alpha:g}; median_p is a summary, "
            "not a test)")
    if p_floor(n_iter) >= threshold:
        line += f"; n_iter = {n_iter} cannot reach the threshold (p ≥ {p_floor(n_iter):.3g}): use n_iter ≥ " \
                f"{int(table.num_rows / alpha)}"
    return line


def failed_gates(table: pa.Table) -> list[str]:
    """One line per classifier row that failed its max_auc gate ([] when none failed or none is configured)."""
    return [f"{row['feature']}: classifier AUC {row['auc']:.4f} ± {row['auc_err']:.4f} > max_auc {row['max_auc']:g}"
            for row in table.to_pylist() if row["statistic"] == CLASSIFIER and row.get("passed") is False]
