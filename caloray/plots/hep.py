"""HEP-style comparison figures: reference vs candidate histograms with per-bin statistical errors and a ratio panel.

Histograms are `hist.Hist` objects with Weight storage (sum of weights and sum of squared weights per bin, under-
and overflow kept), so the figure's numbers can be saved (`caloray.plots.histfile`), merged across shards by
adding and re-drawn. Counts become densities only when drawn: the saved histograms stay raw counts.
Drawn on a private Agg canvas in mplhep's ROOT style (no pyplot state, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import hist
import matplotlib
import mplhep
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Colours: the reference first, then each candidate.
COLOURS = ("0.35", "C1", "C2", "C3", "C4")


@contextmanager
def hep_style():
    """mplhep's ROOT style for the figures drawn inside (restores matplotlib's settings after)."""
    with matplotlib.rc_context(), matplotlib.style.context(mplhep.style.ROOT):
        matplotlib.rcParams["font.size"] = 12  # ROOT's 26 pt is for single full-page plots, not panel grids
        matplotlib.rcParams["mathtext.fontset"] = "dejavusans"  # the style's custom math fonts are not installed
        yield


def axis_label(quantity: str, unit: str) -> str:
    """'quantity [unit]'; dimensionless quantities (unit "") keep their bare name."""
    return f"{quantity} [{unit}]" if unit else quantity


def binning(samples: Sequence[np.ndarray], *, log: bool = False, bins: int = 40) -> np.ndarray:
    """Common bin edges (bins + 1,) spanning the pooled 0.1–99.9 % quantiles of the finite values.

    With `log`, edges are log-spaced over the positive values (zeros fall into the underflow bin).
    """
    pooled = np.concatenate([np.asarray(s, dtype=np.float64).reshape(-1) for s in samples] or [np.zeros(0)])
    pooled = pooled[np.isfinite(pooled)]
    if log:
        pooled = pooled[pooled > 0]
    if pooled.size == 0:
        return np.geomspace(1e-3, 1.0, bins + 1) if log else np.linspace(0.0, 1.0, bins + 1)
    lo, hi = np.quantile(pooled, [0.001, 0.999])
    if log:
        hi = max(hi, lo * 1.01)
        return np.geomspace(lo, hi, bins + 1)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def fill_histogram(values: np.ndarray, edges: np.ndarray, *, label: str, name: str = "x") -> hist.Hist:
    """A 1-D Weight-storage histogram of `values` (N,) on `edges`; non-finite values are dropped."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    axis = hist.axis.Variable(np.asarray(edges, dtype=np.float64), name=name, label=label)
    return hist.Hist(axis, storage=hist.storage.Weight()).fill(values[np.isfinite(values)])


def _shape(h: hist.Hist, density: bool) -> tuple[np.ndarray, np.ndarray]:
    """Bin contents and their 1σ statistical errors, per unit of x and divided by the in-range sum if `density`."""
    values, variances = h.values(), h.variances()
    if not density:
        return values, np.sqrt(variances)
    scale = max(values.sum(), 1e-300) * h.axes[0].widths
    return values / scale, np.sqrt(variances) / scale


def draw_distribution(axes: Axes, h: hist.Hist, *, xlabel: str, unit: str, log: bool = False, density: bool = True,
                      label: str = "") -> None:
    """One sample's histogram with its per-bin statistical errors (no reference to compare with)."""
    edges = h.axes[0].edges
    values, errors = _shape(h, density)
    mplhep.histplot(values, edges, yerr=errors, ax=axes, histtype="step", color="C0",
                    label=f"{label} ({int(h.values(flow=True).sum())})" if label else None)
    if log:
        axes.set_xscale("log")
    positive = values[values > 0]
    if positive.size and positive.max() / positive.min() > 100:
        axes.set_yscale("log")
    per = f" / {unit}" if unit else ""
    axes.set_ylabel(f"fraction of showers{per}" if density else "showers / bin")
    axes.set_xlabel(axis_label(xlabel, unit))
    axes.set_xlim(edges[0], edges[-1])
    if label:
        axes.legend(fontsize="small", frameon=False)


def draw_comparison(main: Axes, ratio: Axes, reference: hist.Hist, candidates: Mapping[str, hist.Hist], *,
                    xlabel: str, unit: str, log: bool = False, density: bool = True,
                    reference_label: str = "reference") -> None:
    """Draw reference (line with error bars and a grey error band in the ratio) and candidates (points with
    error bars) on `main`, and candidate / reference with the candidate's propagated error on `ratio`.

    The ratio's error bars carry the candidate's relative error only; the reference's own relative error is
    the grey band around 1, so both are visible and not double-counted.
    """
    edges = reference.axes[0].edges
    ref_values, ref_errors = _shape(reference, density)
    mplhep.histplot(ref_values, edges, yerr=ref_errors, ax=main, histtype="step", color=COLOURS[0],
                    label=f"{reference_label} ({int(reference.values(flow=True).sum())})")
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_rel = np.where(ref_values > 0, ref_errors / ref_values, np.nan)
    ratio.stairs(1 + ref_rel, edges, baseline=1 - ref_rel, fill=True, color=COLOURS[0], alpha=0.3, lw=0)
    ratio.axhline(1.0, color=COLOURS[0], lw=0.8)
    for i, (label, h) in enumerate(candidates.items(), start=1):
        colour = COLOURS[i % len(COLOURS)]
        values, errors = _shape(h, density)
        mplhep.histplot(values, edges, yerr=errors, ax=main, histtype="errorbar", color=colour, markersize=3,
                        label=f"{label} ({int(h.values(flow=True).sum())})")
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(ref_values > 0, values / ref_values, np.nan)
            r_err = np.where(ref_values > 0, errors / ref_values, np.nan)
        centres = 0.5 * (edges[1:] + edges[:-1]) if not log else np.sqrt(edges[1:] * edges[:-1])
        ratio.errorbar(centres, r, yerr=r_err, fmt="o", ms=3, color=colour, elinewidth=1)
    if log:
        main.set_xscale("log")
        ratio.set_xscale("log")
    positive = ref_values[ref_values > 0]
    if positive.size and positive.max() / positive.min() > 100:  # contents span decades: log y shows the tails
        main.set_yscale("log")
    per = f" / {unit}" if unit else ""
    main.set_ylabel(f"fraction of showers{per}" if density else "showers / bin")
    main.set_xlabel("")
    main.legend(fontsize="small", frameon=False)
    ratio.set_xlabel(axis_label(xlabel, unit))
    ratio.set_ylabel("ratio to ref.", fontsize="small")
    ratio.set_ylim(0.5, 1.5)
    ratio.set_xlim(edges[0], edges[-1])
    main.set_xlim(edges[0], edges[-1])


def comparison_figure(reference: hist.Hist, candidates: Mapping[str, hist.Hist], *, xlabel: str, unit: str,
                      log: bool = False, density: bool = True, title: str = "",
                      reference_label: str = "reference") -> Figure:
    """One comparison panel over its ratio panel, as a Figure (not yet saved)."""
    with hep_style():
        figure = Figure(figsize=(6.0, 5.5), dpi=100)
        FigureCanvasAgg(figure)
        main, ratio = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05})
        main.tick_params(which="both", labelbottom=False)
        draw_comparison(main, ratio, reference, candidates, xlabel=xlabel, unit=unit, log=log, density=density,
                        reference_label=reference_label)
        if title:
            main.set_title(title, fontsize="medium")
        figure.subplots_adjust(left=0.16, right=0.96, top=0.92 if title else 0.96, bottom=0.12)
    return figure


def compare_histograms(reference: np.ndarray | hist.Hist, candidate: np.ndarray | hist.Hist | Mapping[str, Any],
                       edges: np.ndarray | None = None, *, xlabel: str, unit: str, log: bool = False,
                       density: bool = True, title: str = "", labels: tuple[str, str] = ("reference", "candidate"),
                       ) -> tuple[Figure, dict[str, hist.Hist]]:
    """Reference vs candidate(s) with per-bin statistical errors and a ratio panel.

    reference, candidate: samples (N,) in `unit`, or already filled `hist.Hist`s; `candidate` may map labels to
    several samples. edges: bin edges (B + 1,) in `unit` (default: `binning` of the pooled samples). Returns the
    figure and the histograms behind it, keyed by label (save both with `caloray.plots.histfile.save_figure`).
    """
    candidates = dict(candidate) if isinstance(candidate, Mapping) else {labels[1]: candidate}
    raw = [v for v in (reference, *candidates.values()) if not isinstance(v, hist.Hist)]
    if edges is None:
        edges = reference.axes[0].edges if isinstance(reference, hist.Hist) else binning(raw, log=log)
    x = axis_label(xlabel, unit)

    def as_hist(values: np.ndarray | hist.Hist) -> hist.Hist:
        return values if isinstance(values, hist.Hist) else fill_histogram(values, edges, label=x)

    histograms = {labels[0]: as_hist(reference), **{k: as_hist(v) for k, v in candidates.items()}}
    figure = comparison_figure(histograms[labels[0]], {k: histograms[k] for k in candidates}, xlabel=xlabel,
                               unit=unit, log=log, density=density, title=title, reference_label=labels[0])
    return figure, histograms
