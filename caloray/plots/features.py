"""Grids of reference vs candidate(s) comparison panels, each with per-bin errors and a ratio panel below it.

`plot_comparison_grid` is the general form (any quantities, several candidates); `plot_feature_comparison` draws
the marginals of a feature map (the inputs of the two-sample tests). Every PNG has its histograms in a ROOT file
beside it (`caloray.plots.histfile`), from which `comparison_grid` redraws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hist
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from caloray.features.maps import feature_columns
from caloray.geometry import Geometry
from caloray.plots.hep import axis_label, binning, draw_comparison, draw_distribution, fill_histogram, hep_style
from caloray.plots.histfile import save_figure


@dataclass(frozen=True)
class Panel:
    """One quantity to compare: samples maps label → values (N,) in `unit`, the reference first (a panel with a
    single sample shows its distribution alone, without a ratio panel).

    Energy-like (`log`) quantities get log-spaced bins over the positive values; zeros land in the underflow
    bin and the panel title gives each sample's zero fraction.
    """

    quantity: str
    unit: str
    samples: Mapping[str, np.ndarray]
    log: bool = False
    title: str = ""


def comparison_grid(histograms: Mapping[str, hist.Hist], meta: Mapping[str, Any]) -> Figure:
    """Draw the panels described by `meta["panels"]` (histogram keys per label, quantity, unit, log, title)."""
    panels = meta["panels"]
    n_cols = min(int(meta.get("n_cols", 3)), len(panels))
    n_rows = -(-len(panels) // n_cols)
    with hep_style():
        height = 4.4 * n_rows + 0.7
        figure = Figure(figsize=(4.6 * n_cols, height), dpi=90)
        FigureCanvasAgg(figure)
        outer = figure.add_gridspec(n_rows, n_cols, hspace=0.4, wspace=0.38, left=0.07, right=0.98,
                                    bottom=0.5 / height, top=1 - 1.0 / height)
        for spec, panel in zip(outer, panels, strict=False):
            labels = list(panel["histograms"])
            if len(labels) == 1:
                main = figure.add_subplot(spec)
                draw_distribution(main, histograms[panel["histograms"][labels[0]]], xlabel=panel["quantity"],
                                  unit=panel["unit"], log=panel["log"], density=True)
            else:
                inner = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
                main = figure.add_subplot(inner[0])
                ratio = figure.add_subplot(inner[1], sharex=main)
                main.tick_params(which="both", labelbottom=False)
                draw_comparison(main, ratio, histograms[panel["histograms"][labels[0]]],
                                {k: histograms[panel["histograms"][k]] for k in labels[1:]},
                                xlabel=panel["quantity"], unit=panel["unit"], log=panel["log"], density=True,
                                reference_label=labels[0])
            title = [panel.get("title", "")]
            if any(panel.get("zero_fraction") or ()):
                title.append("zero: " + ", ".join(f"{v:.0%}" for v in panel["zero_fraction"]))
            main.set_title("; ".join(t for t in title if t), fontsize="small")
        figure.suptitle(meta.get("title", ""), fontsize="medium", y=1 - 0.25 / height)
    return figure


def plot_comparison_grid(panels: Sequence[Panel], png: str | Path, *, title: str = "", n_cols: int = 3,
                         meta: Mapping[str, Any] | None = None) -> Path:
    """Fill, draw and save a grid of comparison panels (row by row, `n_cols` per row); returns the PNG path."""
    histograms: dict[str, hist.Hist] = {}
    described = []
    for i, panel in enumerate(panels):
        edges = binning(list(panel.samples.values()), log=panel.log)
        keys = {label: f"{label}/{i}" for label in panel.samples}
        for label, values in panel.samples.items():
            histograms[keys[label]] = fill_histogram(values, edges, label=axis_label(panel.quantity, panel.unit))
        entry = {"quantity": panel.quantity, "unit": panel.unit, "log": panel.log, "title": panel.title,
                 "histograms": keys}
        if panel.log:
            entry["zero_fraction"] = [float(np.mean(np.asarray(v) <= 0)) for v in panel.samples.values()]
        described.append(entry)
    meta = {**(meta or {}), "kind": "comparison-grid", "title": title, "n_cols": n_cols, "panels": described}
    return save_figure(comparison_grid(histograms, meta), png, histograms, meta)


#: Histograms per feature map in a comparison figure (evenly spread columns when the map has more).
MAX_PANELS = 6


def panel_columns(d: int, max_panels: int = MAX_PANELS) -> list[int]:
    """The columns of a d-column feature map that its comparison figure draws (at most `max_panels`)."""
    return list(range(d)) if d <= max_panels else sorted(set(np.linspace(0, d - 1, max_panels).round().astype(int)))


def plot_feature_comparison(name: str, reference: np.ndarray, candidate: np.ndarray, geometry: Geometry,
                            png: str | Path, *, max_panels: int = MAX_PANELS,
                            labels: tuple[str, str] = ("reference", "candidate")) -> Path:
    """Compare the marginals of feature map `name`: reference (N, d) vs candidate (M, d) in the map's units
    (at most `max_panels` columns, evenly spread). Writes `png` and its histograms (`.root`) beside it."""
    reference = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    candidate = np.asarray(candidate, dtype=np.float64).reshape(len(candidate), -1)
    columns = feature_columns(name, reference.shape[1], geometry)
    panels = [Panel(columns[j][0], columns[j][1], {labels[0]: reference[:, j], labels[1]: candidate[:, j]},
                    log=columns[j][2]) for j in panel_columns(reference.shape[1], max_panels)]
    title = f"{name} ({geometry.name}): {len(reference)} {labels[0]} vs {len(candidate)} {labels[1]} showers"
    return plot_comparison_grid(panels, png, title=title, meta={"feature": name, "d": int(reference.shape[1])})


def plot_feature_comparisons(features: Mapping[str, tuple[np.ndarray, np.ndarray]], geometry: Geometry,
                             out_dir: str | Path, *, labels: tuple[str, str] = ("reference", "candidate"),
                             ) -> list[Path]:
    """`plot_feature_comparison` of every feature map: OUT_DIR/<feature>.png and .root."""
    return [plot_feature_comparison(name, ref, cand, geometry, Path(out_dir) / f"{name}.png", labels=labels)
            for name, (ref, cand) in features.items()]
