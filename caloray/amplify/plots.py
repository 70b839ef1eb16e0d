"""Figures of the amplification study: quantile MSE vs number of events (paper Fig. 2) and factors vs N_q."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from caloray.amplify.metrics import truth_mse

if TYPE_CHECKING:
    from caloray.amplify.config import AmplificationConfig

COLORS = {"sample": "tab:blue", "truth": "tab:blue", "fit": "tab:green", "flow": "tab:orange",
          "ensemble": "tab:purple", "resample": "tab:gray"}
LABELS = {"fit": "5-parameter fit", "flow": "flow", "ensemble": "flow ensemble", "resample": "resampled training"}


def _band(curves: list[dict[str, Any]], model: str, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [r for r in curves if r["model"] == model and r["n_quantiles"] == q]
    sizes = np.array(sorted({r["n_generated"] for r in rows}))
    values = [[r["mse"] for r in rows if r["n_generated"] == s] for s in sizes]
    return sizes, np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])


def plot_mse_curves(config: AmplificationConfig, curves: list[dict[str, Any]], asymptotes: list[dict[str, Any]],
                    summary: list[dict[str, Any]], path: str | Path) -> Path:
    """One panel per N_q: truth expectation, training sample ± spread, generator curves ± spread, plateaus."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    qs = list(config.n_quantiles)
    fig, axes = plt.subplots(1, len(qs), figsize=(5.2 * len(qs), 4.4), squeeze=False)
    n = config.n_train
    factors = {(r["model"], r["n_quantiles"]): r for r in summary}
    for ax, q in zip(axes[0], qs, strict=True):
        x = np.geomspace(min(config.generated_sizes[0], n), config.generated_sizes[-1], 200)
        ax.plot(x, truth_mse(x, q), color="black", lw=1, ls="--", label="truth, N events (expected)")
        sizes, mean, _ = _band(curves, "truth", q)
        if sizes.size:
            ax.plot(sizes, mean, "o", color="black", ms=3, label="truth, N events (MC mean)")
        for k in range(2, 11):  # the paper's horizontal lines for 2n … 10n sampled events
            ax.axhline(truth_mse(k * n, q), color=COLORS["sample"], lw=0.5, alpha=0.35)
        train = [r["mse_curve"] for r in asymptotes if r["model"] == "sample" and r["n_quantiles"] == q]
        if train:
            m, s = float(np.mean(train)), float(np.std(train))
            ax.axhspan(m - s, m + s, color=COLORS["sample"], alpha=0.15)
            ax.axhline(m, color=COLORS["sample"], lw=1.5, label=f"training sample ({n} events)")
        for model in ("fit", "flow", "ensemble", "resample"):
            sizes, mean, std = _band(curves, model, q)
            if not sizes.size:
                continue
            row = factors.get((model, q))
            label = LABELS[model] + (f": A = {row['amplification']:.2f} ± {row['amplification_err']:.2f}"
                                     if row else "")
            ax.plot(sizes, mean, "-o", ms=3, color=COLORS[model], label=label)
            ax.fill_between(sizes, np.maximum(mean - std, mean * 1e-3), mean + std, color=COLORS[model], alpha=0.2)
            if row:
                ax.axhline(row["mse_asymptotic"], color=COLORS[model], ls=":", lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of events N")
        ax.set_ylabel("quantile MSE")
        ax.set_title(f"{q} quantiles")
        ax.grid(alpha=0.3, which="both", lw=0.4)
        ax.legend(fontsize=6.5, loc="lower left")
    fig.suptitle(f"Quantile MSE vs events: {n} training events, {config.repetitions} repetitions "
                 "(bands: spread over repetitions; dotted: plateaus)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_amplification(summary: list[dict[str, Any]], path: str | Path) -> Path:
    """Amplification factor (± error of the mean) vs number of quantiles, one series per model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for model in dict.fromkeys(r["model"] for r in summary):
        rows = [r for r in summary if r["model"] == model]
        ax.errorbar([r["n_quantiles"] for r in rows], [r["amplification"] for r in rows],
                    yerr=[r["amplification_err"] for r in rows], marker="o", capsize=3,
                    color=COLORS.get(model), label=LABELS.get(model, "training sample"))
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of quantiles")
    ax.set_ylabel("amplification factor")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both", lw=0.4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
