"""Figures of the calibration study (analogues of the MLE-calibration paper's Figs. 2–7)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from caloray.plots.summary import _save

_STYLE = {("flow", "uniform"): ("C0", "o"), ("flow", "log-uniform"): ("C0", "s"),
          ("dnn", "uniform"): ("C3", "o"), ("dnn", "log-uniform"): ("C3", "s")}


def _series(rows: list[dict], method: str, prior: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    sel = [r for r in rows if r["method"] == method and r["prior"] == prior]
    return np.array([r["E_true [GeV]"] for r in sel]), np.array([r[key] for r in sel])


def plot_bias(rows: list[dict], path: Path) -> Path:
    """Bias (mode of E_pred/E_true − 1) with bootstrap uncertainty vs E_true, per method and prior."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for (method, prior), (colour, marker) in _STYLE.items():
        energy, bias = _series(rows, method, prior, "bias")
        if energy.size:
            _, unc = _series(rows, method, prior, "mode_unc")
            ax.errorbar(energy, bias, yerr=unc, color=colour, marker=marker, ls="-" if prior == "uniform" else "--",
                        capsize=2, label=f"{method.upper()}, {prior} prior")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("E_true [GeV]")
    ax.set_ylabel("bias = mode(E_pred/E_true) − 1")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_resolution(rows: list[dict], path: Path) -> Path:
    """Full resolution vs mean per-shower resolution (flows) and the DNN's full resolution, vs E_true."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for (method, prior), (colour, marker) in _STYLE.items():
        energy, full = _series(rows, method, prior, "full_resolution")
        if not energy.size:
            continue
        ls = "-" if prior == "uniform" else "--"
        ax.plot(energy, full, color=colour, marker=marker, ls=ls, label=f"{method.upper()} full, {prior}")
        if method == "flow":
            _, shower = _series(rows, method, prior, "mean_shower_resolution")
            ax.plot(energy, shower, color="C2", marker=marker, ls=ls, label=f"flow mean per-shower, {prior}")
    ax.set_xlabel("E_true [GeV]")
    ax.set_ylabel("relative resolution")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _no_data(fig, ax, path: Path, title: str) -> Path:
    """Save a figure that says why it is empty, instead of failing the whole report."""
    ax.text(0.5, 0.5, "no showers with a finite in-range estimate", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_error_vs_resolution(ratios: np.ndarray, shower_resolution: np.ndarray, path: Path, title: str = "") -> Path:
    """|E_pred/E_true − 1| vs per-shower resolution (relative), with the binned mean and the diagonal."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ok = np.isfinite(ratios) & np.isfinite(shower_resolution)
    error, res = np.abs(ratios[ok] - 1), shower_resolution[ok]
    if res.size < 2:
        return _no_data(fig, ax, path, title)
    ax.hist2d(res, error, bins=50, cmap="viridis", cmin=1, norm=LogNorm())
    edges = np.quantile(res, np.linspace(0, 1, 11))
    centres = 0.5 * (edges[1:] + edges[:-1])
    idx = np.clip(np.digitize(res, edges) - 1, 0, 9)
    mean_abs = [np.mean(error[idx == i]) if np.any(idx == i) else np.nan for i in range(10)]
    ax.plot(centres, mean_abs, "w-o", ms=3, label="mean |E_pred/E_true − 1|")
    lim = np.quantile(res, 0.99)
    ax.plot([0, lim], [0, lim * np.sqrt(2 / np.pi)], "r--", lw=1, label="Gaussian expectation √(2/π)·σ")
    ax.set_xlabel("per-shower resolution / E_true")
    ax.set_ylabel("|E_pred/E_true − 1|")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_asymmetry(asymmetry: np.ndarray, path: Path, title: str = "") -> Path:
    """Histogram of Δ_L/Δ_U (log-x), with the fraction above 1."""
    values = asymmetry[np.isfinite(asymmetry) & (asymmetry > 0)]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if values.size < 2:
        return _no_data(fig, ax, path, title)
    ax.hist(values, bins=np.geomspace(max(values.min(), 0.1), min(values.max(), 10), 60), histtype="step")
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", ls="--")
    ax.set_xlabel("Δ_L / Δ_U")
    ax.set_title(f"{title}  (fraction > 1: {np.mean(values > 1):.2f})", fontsize=9)
    return _save(fig, path)


def plot_edep_vs_einc(incident_gev: np.ndarray, deposited_gev: np.ndarray, path: Path) -> Path:
    """2-D histogram of E_dep vs E_inc with the mode of E_inc in each E_dep slice (paper Fig. 7)."""
    fig, ax = plt.subplots(figsize=(6, 4.8))
    counts, x_edges, y_edges, _ = ax.hist2d(incident_gev, deposited_gev, bins=60, cmap="viridis", cmin=1,
                                            norm=LogNorm())
    filled = np.nan_to_num(counts)
    rows = filled.sum(axis=0) > 20
    x_centres = 0.5 * (x_edges[1:] + x_edges[:-1])
    y_centres = 0.5 * (y_edges[1:] + y_edges[:-1])
    ax.plot(x_centres[np.argmax(filled, axis=0)][rows], y_centres[rows], "w-", lw=1.5, label="mode of E_inc | E_dep")
    ax.set_xlabel("E_inc [GeV]")
    ax.set_ylabel("E_dep [GeV]")
    ax.legend(fontsize=8)
    return _save(fig, path)
