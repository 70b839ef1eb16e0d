"""The histograms behind a figure, stored as ROOT TH1D objects next to its PNG (and logged with it to MLflow).

Why ROOT: it is the format physicists already merge (`hadd`) and browse (ROOT, uproot), TH1D keeps per-bin sums
of weights and of squared weights plus under/overflow, so shards add up exactly, and uproot writes and reads it
without pickling anything. uproot's `to_hist()` rebuilds a `hist.Hist` with its axis label (quantity and unit).
The figure's own settings (which histogram is the reference, units, scales, test results printed on it) travel
in a TObjString `caloray_figure` holding JSON, so `replot` redraws the figure from the file alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import hist
import numpy as np
from matplotlib.figure import Figure

from caloray.errors import CalorayError
from caloray.provenance import atomic_write

META_KEY = "caloray_figure"
SUFFIX = ".root"


class HistogramFileError(CalorayError, ValueError):
    """A histogram file is missing, unreadable, or its histograms cannot be merged."""


def _key(label: str) -> str:
    # ROOT object names may not hold '/' or ';' (directory and cycle separators)
    return label.replace("/", "_").replace(";", "_")


def write_histograms(path: str | Path, histograms: Mapping[str, hist.Hist], meta: Mapping[str, Any]) -> Path:
    """Write `histograms` (label → 1-D Weight hist) and `meta` (JSON-able) to a ROOT file, atomically."""
    import uproot

    keys = {label: _key(label) for label in histograms}

    def write(tmp: Path) -> None:
        with uproot.recreate(tmp) as f:
            for label, h in histograms.items():
                f[keys[label]] = h
            f[META_KEY] = json.dumps({**meta, "histograms": keys}, sort_keys=True, default=float)

    return atomic_write(path, write)


def read_histograms(path: str | Path) -> tuple[dict[str, hist.Hist], dict[str, Any]]:
    """(label → `hist.Hist`, meta) from a file written by `write_histograms`."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise HistogramFileError(f"{path}: file not found")
    try:
        with uproot.open(path) as f:
            if META_KEY not in f.keys(cycle=False):
                raise HistogramFileError(f"{path}: missing object {META_KEY!r} (not a caloray histogram file)")
            meta = json.loads(str(f[META_KEY]))
            histograms = {label: f[key].to_hist() for label, key in meta.pop("histograms").items()}
    except HistogramFileError:
        raise
    except Exception as exc:  # uproot's many error types for damaged files
        raise HistogramFileError(f"{path}: unreadable histogram file: {type(exc).__name__}: {exc}") from None
    return histograms, meta


def merge_histogram_files(paths: Iterable[str | Path]) -> tuple[dict[str, hist.Hist], dict[str, Any]]:
    """Sum same-labelled histograms of several files (e.g. one per shard): contents and variances add.

    The meta of the first file is kept; histograms must share labels and bin edges.
    """
    paths = list(paths)
    if not paths:
        raise HistogramFileError("no histogram files to merge")
    total, meta = read_histograms(paths[0])
    for path in paths[1:]:
        more, _ = read_histograms(path)
        if more.keys() != total.keys():
            raise HistogramFileError(f"{path}: histograms {sorted(more)} differ from {sorted(total)}")
        for label, h in more.items():
            if not np.array_equal(h.axes[0].edges, total[label].axes[0].edges):
                raise HistogramFileError(f"{path}: histogram {label!r} has other bin edges than {paths[0]}")
            total[label] = total[label] + h
    return total, meta


def histogram_path(png: str | Path) -> Path:
    """Where the histograms of figure `png` live: same folder and stem, `.root`."""
    return Path(png).with_suffix(SUFFIX)


def save_figure(figure: Figure, png: str | Path, histograms: Mapping[str, hist.Hist], meta: Mapping[str, Any]) -> Path:
    """Write the figure as PNG and its histograms (+ `meta`) beside it; returns the PNG path."""
    png = Path(png)
    write_histograms(histogram_path(png), histograms, meta)
    return atomic_write(png, lambda tmp: figure.savefig(tmp, format="png"))


def replot(histograms: Mapping[str, hist.Hist], meta: Mapping[str, Any]) -> Figure:
    """Redraw a figure from its saved (or merged) histograms and meta."""
    kind = meta.get("kind")
    if kind == "comparison":
        from caloray.plots.hep import comparison_figure

        reference = meta["reference"]
        return comparison_figure(histograms[reference], {k: v for k, v in histograms.items() if k != reference},
                                 xlabel=meta["xlabel"], unit=meta["unit"], log=bool(meta["log"]),
                                 density=bool(meta["density"]), title=meta.get("title", ""),
                                 reference_label=reference)
    if kind == "comparison-grid":
        from caloray.plots.features import comparison_grid

        return comparison_grid(histograms, meta)
    if kind == "null-vs-alternative":
        from caloray.validate.io import null_vs_alternative_figure

        return null_vs_alternative_figure(histograms["null"], histograms["alternative"], meta)
    raise HistogramFileError(f"histogram file meta: unknown figure kind {kind!r}")
