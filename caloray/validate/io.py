"""Write test results: replicate arrays to Parquet, a null-vs-alternative histogram and the classifier metric's
calibration curve to PNG.

Both are written to a temporary name in the target folder and renamed, so readers never see a
half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from caloray.stats.classifier import ClassifierResult
from caloray.validate.summary import TestResult, format_p, format_sigma

#: Null quantiles drawn as vertical lines on the histogram.
NULL_QUANTILES: tuple[float, ...] = (0.68, 0.95, 0.99)
METADATA_KEY = b"caloray.validate"


def _temporary_sibling(path: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    return Path(name)


def _atomic_write(path: Path, write: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def replicates_table(result: TestResult, metadata: dict[str, Any] | None = None) -> pa.Table:
    """Columns replicate (int64), null, alt (float64) and, with a calibrated test, test_null (its permutation
    values); the summary and `metadata` as JSON schema metadata."""
    if result.null.size != result.alt.size:
        raise ValueError("null and alternative arrays must have the same length to share a table")
    columns = {
        "replicate": pa.array(np.arange(result.null.size, dtype=np.int64)),
        "null": pa.array(result.null, type=pa.float64()),
        "alt": pa.array(result.alt, type=pa.float64()),
    }
    if result.test is not None and result.test.null.size == result.null.size:
        columns["test_null"] = pa.array(result.test.null, type=pa.float64())
    table = pa.table(columns)
    info = {"summary": result.summary(), "metadata": metadata or {}}
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(info).encode()})


def write_replicates_parquet(result: TestResult, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the null/alt replicate arrays of `result` to Parquet at `path` (temp file, then rename)."""
    table = replicates_table(result, metadata)
    return _atomic_write(Path(path), lambda tmp: pq.write_table(table, tmp))


def read_replicates_parquet(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(null, alt, info) from a file written by `write_replicates_parquet`."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY, b"{}")
    return table["null"].to_numpy(), table["alt"].to_numpy(), json.loads(raw)


def _p_title(result: TestResult) -> str:
    if result.test is None:
        return f"{result.statistic}: median_p = {result.median_p:.3g} (summary)"
    test, relation = result.test, "" if result.test.at_floor else "= "
    return f"{result.statistic}: p {relation}{format_p(test.p_value, test.at_floor)} (σ {relation}" \
           f"{format_sigma(test.sigma, test.at_floor)})"


def plot_null_vs_alternative(result: TestResult, path: str | Path, title: str = "", bins: int = 50) -> Path:
    """Histogram of null and alternative replicates with the null's 68/95/99% quantiles, as a PNG."""
    figure = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    both = np.concatenate([result.null, result.alt])
    edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=bins)
    axes.hist(result.null, bins=edges, alpha=0.6, label="null (H0)", color="tab:blue")
    axes.hist(result.alt, bins=edges, alpha=0.6, label="alternative (H1)", color="tab:orange")
    for q, style in zip(NULL_QUANTILES, (":", "--", "-"), strict=True):
        axes.axvline(np.quantile(result.null, q), color="black", linestyle=style, label=f"null {q:.0%}")
    axes.set_xlabel(result.statistic or "statistic")
    axes.set_ylabel("replicates")
    if result.test is not None:
        axes.axvline(result.test.statistic_value, color="tab:red", label="held-out test")
    axes.set_title(title or _p_title(result))
    axes.legend(fontsize="small")
    figure.tight_layout()
    return _atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png"))


def plot_calibration_curve(result: ClassifierResult, path: str | Path, title: str = "") -> Path:
    """Reliability diagram of the classifier metric as a PNG: observed candidate fraction vs predicted
    probability, raw output on the validation split and calibrated output on the held-out test split."""
    figure = Figure(figsize=(5.0, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for curve, label, marker in ((result.raw_validation, "raw output (validation)", "o"),
                                 (result.calibrated_test, "isotonic-calibrated (test)", "s")):
        filled = curve.counts > 0
        axes.plot(curve.predicted[filled], curve.observed[filled], marker=marker, label=label)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("predicted P(candidate | x)")
    axes.set_ylabel("observed candidate fraction (classes weighted equally)")
    axes.set_title(title or "classifier calibration")
    axes.text(0.03, 0.92, f"AUC = {result.auc:.4f} ± {result.auc_err:.4f}\nJSD = {result.jsd:.4f} ± "
              f"{result.jsd_err:.4f} bits", transform=axes.transAxes, va="top", fontsize="small")
    axes.legend(fontsize="small", loc="lower right")
    figure.tight_layout()
    return _atomic_write(Path(path), lambda tmp: figure.savefig(tmp, format="png"))
