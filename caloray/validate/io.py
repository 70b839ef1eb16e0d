"""Write test results: replicate arrays to Parquet, a null-vs-alternative histogram (+ ROOT histograms) and the
classifier metric's calibration curve to PNG.

All are written to a temporary name in the target folder and renamed, so readers never see a
half-written file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hist
import mplhep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from caloray.provenance import atomic_write
from caloray.stats.classifier import ClassifierResult
from caloray.validate.summary import TestResult, significance

#: Null quantiles drawn as vertical lines on the histogram.
NULL_QUANTILES: tuple[float, ...] = (0.68, 0.95, 0.99)
METADATA_KEY = b"caloray.validate"
#: Statistics that average over random directions (their figure prints the number of slices).
SLICED = frozenset({"sks", "swd"})


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
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def read_replicates_parquet(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(null, alt, info) from a file written by `write_replicates_parquet`."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY, b"{}")
    return table["null"].to_numpy(), table["alt"].to_numpy(), json.loads(raw)


def _p_text(p: float, sigma: float, n_null: int) -> str:
    """'p = …, … σ', or a bound when p sits at the empirical floor 1 / (1 + n_null) (spec §2): no null replicate
    reached the observed value, so the null resolves p no finer than that."""
    floor = 1.0 / (1 + n_null)
    if p <= floor * (1 + 1e-9):
        return f"p ≤ {floor:.3g} (floor of {n_null} nulls)\nσ ≥ {significance(floor):.2f}"
    return f"p = {p:.3g}\nσ = {sigma:.2f}"


def _shown_test(result: TestResult) -> dict[str, Any]:
    """The p-value the figure prints: the calibrated test's (the one that gates) against its own permutation null
    when it was run, else the thesis summary median_p against the replicate null (labelled as a summary)."""
    if result.test is not None:
        test = result.test
        return {"p_value": test.p_value, "sigma": test.sigma, "n_null": int(test.null.size),
                "test_statistic": test.statistic_value, "p_label": "calibrated test", "median_p": result.median_p}
    return {"p_value": result.median_p, "sigma": result.median_sigma, "n_null": int(result.null.size),
            "p_label": "median_p (summary, not a test)", "median_p": result.median_p}


def null_vs_alternative_figure(null: hist.Hist, alt: hist.Hist, meta: Mapping[str, Any]) -> Figure:
    """Null and alternative replicate histograms with their Poisson errors, the null's 68/95/99 % quantiles,
    the observed value (median alternative replicate), and the test and design printed in a box."""
    from caloray.plots.hep import hep_style

    with hep_style():
        figure = Figure(figsize=(7.2, 5.0), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        edges = null.axes[0].edges
        for h, label, colour in ((null, "null (H0)", "tab:blue"), (alt, "alternative (H1)", "tab:orange")):
            mplhep.histplot(h.values(), edges, yerr=np.sqrt(h.variances()), ax=axes, histtype="fill", alpha=0.35,
                            color=colour, label=f"{label}, {int(h.values(flow=True).sum())} replicates")
            mplhep.histplot(h.values(), edges, yerr=np.sqrt(h.variances()), ax=axes, histtype="step", color=colour)
        for q, style in zip(NULL_QUANTILES, (":", "--", "-."), strict=True):
            axes.axvline(meta["null_quantiles"][f"{q:g}"], color="black", linestyle=style, lw=1,
                         label=f"null {q:.0%} quantile")
        axes.axvline(meta["observed"], color="tab:red", lw=2, label=f"observed (median H1) {meta['observed']:.4g}")
        if meta.get("test_statistic") is not None:
            axes.axvline(meta["test_statistic"], color="tab:purple", lw=2, linestyle="--",
                         label=f"held-out test {meta['test_statistic']:.4g}")
        lines = [meta.get("p_label", "test"), _p_text(meta["p_value"], meta["sigma"], meta["n_null"]),
                 f"feature map: {meta['feature']}",
                 f"d = {meta['d']}, batch size = {meta['batch_size']}"]
        if meta.get("n_slices") is not None and meta["statistic"] in SLICED:
            lines.append(f"slices = {meta['n_slices']}")
        axes.text(0.98, 0.97, "\n".join(lines), transform=axes.transAxes, ha="right", va="top", fontsize=9,
                  bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})
        axes.set_xlabel(f"{meta['statistic']} statistic")  # its unit depends on the statistic and feature map
        axes.set_ylabel("replicates / bin")
        axes.set_title(meta.get("title") or meta["statistic"], fontsize="medium")
        axes.legend(fontsize=8, loc="upper left", frameon=False)
        axes.set_ylim(0, axes.get_ylim()[1] * 1.6)  # room for the legend and the box above the histograms
        figure.subplots_adjust(left=0.1, right=0.96, bottom=0.12, top=0.92)
    return figure


def plot_null_vs_alternative(result: TestResult, path: str | Path, title: str = "", bins: int = 50, *,
                             feature: str = "", d: int | None = None, design: Mapping[str, Any] | None = None,
                             ) -> Path:
    """Null vs alternative replicates as a PNG marking the observed value and printing p-value, sigma, feature
    map, d, batch size and slices; the two histograms go to a ROOT file beside it (`caloray.plots.histfile`)."""
    from caloray.plots.hep import fill_histogram
    from caloray.plots.histfile import save_figure

    both = np.concatenate([result.null, result.alt])
    edges = np.histogram_bin_edges(both[np.isfinite(both)], bins=bins)
    label = f"{result.statistic or 'statistic'} statistic"
    histograms = {"null": fill_histogram(result.null, edges, label=label),
                  "alternative": fill_histogram(result.alt, edges, label=label)}
    design = dict(design or {})
    meta = {"kind": "null-vs-alternative", "title": title, "statistic": result.statistic, "feature": feature,
            "d": d, "batch_size": design.get("batch_size"), "n_slices": design.get("n_slices"),
            "design": design, "observed": result.observed, **_shown_test(result),
            "null_quantiles": {f"{q:g}": float(np.quantile(result.null, q)) for q in NULL_QUANTILES}}
    figure = null_vs_alternative_figure(histograms["null"], histograms["alternative"], meta)
    return save_figure(figure, path, histograms, meta)


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
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
