"""Reference vs candidate marginals of a feature map (the inputs of the two-sample tests), with ratio panels.

One PNG per feature map: a grid of up to `max_panels` columns of the (N, d) feature matrix, each panel with
per-bin statistical errors and a candidate / reference ratio; the histograms go to a ROOT file beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hist
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from caloray.features.maps import feature_columns
from caloray.geometry import Geometry
from caloray.plots.hep import axis_label, binning, draw_comparison, fill_histogram, hep_style
from caloray.plots.histfile import save_figure


def _panel_columns(d: int, max_panels: int) -> list[int]:
    return list(range(d)) if d <= max_panels else sorted(set(np.linspace(0, d - 1, max_panels).round().astype(int)))


def comparison_grid(histograms: Mapping[str, hist.Hist], meta: Mapping[str, Any]) -> Figure:
    """Draw the panels described by `meta["panels"]` (reference / candidate labels, quantity, unit, log)."""
    panels = meta["panels"]
    n_cols = min(3, len(panels))
    n_rows = -(-len(panels) // n_cols)
    with hep_style():
        figure = Figure(figsize=(4.6 * n_cols, 4.4 * n_rows), dpi=90)
        FigureCanvasAgg(figure)
        outer = figure.add_gridspec(n_rows, n_cols, hspace=0.35, wspace=0.35)
        for spec, panel in zip(outer, panels, strict=False):
            inner = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
            main = figure.add_subplot(inner[0])
            ratio = figure.add_subplot(inner[1], sharex=main)
            main.tick_params(labelbottom=False)
            draw_comparison(main, ratio, histograms[panel["reference"]],
                            {meta["labels"][1]: histograms[panel["candidate"]]}, xlabel=panel["quantity"],
                            unit=panel["unit"], log=panel["log"], density=True, reference_label=meta["labels"][0])
            zeros = panel.get("zero_fraction")
            if zeros is not None:
                main.set_title(f"zero: {zeros[0]:.0%} ref., {zeros[1]:.0%} cand.", fontsize="small")
        figure.suptitle(meta.get("title", ""), fontsize="medium")
    return figure


def plot_feature_comparison(name: str, reference: np.ndarray, candidate: np.ndarray, geometry: Geometry,
                            png: str | Path, *, max_panels: int = 6,
                            labels: tuple[str, str] = ("reference", "candidate")) -> Path:
    """Compare the marginals of feature map `name`: reference (N, d) vs candidate (M, d) in the map's units.

    Energy-like columns use log-spaced bins over the positive values; zeros land in the underflow bin and the
    panel title gives each sample's zero fraction. Writes `png` and its histograms (`.root`) beside it.
    """
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    candidate = np.asarray(candidate, dtype=np.float64).reshape(len(candidate), -1)
    columns = feature_columns(name, reference.shape[1], geometry)
    histograms: dict[str, hist.Hist] = {}
    panels = []
    for j in _panel_columns(reference.shape[1], max_panels):
        quantity, unit, log = columns[j]
        edges = binning([reference[:, j], candidate[:, j]], log=log)
        keys = {label: f"{label}/{name}/{j}" for label in labels}
        for label, sample in zip(labels, (reference, candidate), strict=True):
            histograms[keys[label]] = fill_histogram(sample[:, j], edges, label=axis_label(quantity, unit))
        panel = {"column": j, "quantity": quantity, "unit": unit, "log": log,
                 "reference": keys[labels[0]], "candidate": keys[labels[1]]}
        if log:
            panel["zero_fraction"] = [float(np.mean(reference[:, j] <= 0)), float(np.mean(candidate[:, j] <= 0))]
        panels.append(panel)
    meta = {"kind": "comparison-grid", "feature": name, "d": int(reference.shape[1]), "labels": list(labels),
            "panels": panels, "title": f"{name} ({geometry.name}): {len(reference)} {labels[0]} vs "
            f"{len(candidate)} {labels[1]} showers"}
    return save_figure(comparison_grid(histograms, meta), png, histograms, meta)


def plot_feature_comparisons(features: Mapping[str, tuple[np.ndarray, np.ndarray]], geometry: Geometry,
                             out_dir: str | Path, *, labels: tuple[str, str] = ("reference", "candidate"),
                             ) -> list[Path]:
    """`plot_feature_comparison` of every feature map: OUT_DIR/<feature>.png and .root."""
    return [plot_feature_comparison(name, ref, cand, geometry, Path(out_dir) / f"{name}.png", labels=labels)
            for name, (ref, cand) in features.items()]
