"""Anomaly scoring of shower files (spec §5) on top of the resumable calibration pipeline.

E_rec is the flow's own MLE energy, never the truth; the score −log p(x | E_rec) is the calibration
shards' `anomaly_score` column. With a labelled signal sample: ROC, AUC and SIC.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caloray.anomaly import roc_curve
from caloray.io import expand_paths
from caloray.pipelines.calibrate import CalibrationRun, ModelLoader, calibrate_files
from caloray.plots.anomaly import plot_roc_and_sic


def _scores(loader: ModelLoader, energy_range: tuple[float, float], inputs: list[str], out: Path,
            seed: int) -> np.ndarray:
    run = CalibrationRun(inputs=tuple(str(p) for p in expand_paths(inputs)), out_dir=str(out),
                         energy_min_mev=energy_range[0], energy_max_mev=energy_range[1], seed=seed)
    table = pa.concat_tables([pq.read_table(s, columns=["anomaly_score"]) for s in calibrate_files(loader, run)])
    return table["anomaly_score"].to_numpy()


def score_files(loader: ModelLoader, energy_range: tuple[float, float], background: list[str],
                signal: list[str] | None, out: Path, seed: int = 0) -> str:
    """Score background (and signal) files into `out/`; returns a one-paragraph summary."""
    bkg = _scores(loader, energy_range, background, out / "background", seed)
    lines = [f"background: {len(bkg)} showers, median score {np.median(bkg):.3f} (shards in {out / 'background'})"]
    summary: dict[str, float | int] = {"n_background": len(bkg), "median_background": float(np.median(bkg))}
    if signal:
        sig = _scores(loader, energy_range, signal, out / "signal", seed)
        finite_b, finite_s = bkg[np.isfinite(bkg)], sig[np.isfinite(sig)]
        curve = roc_curve(finite_b, finite_s)
        plot_roc_and_sic(curve, finite_b, finite_s, out / "roc_sic.png")
        _, sic = curve.significance_improvement(1.0 / max(len(finite_b), 1))
        summary |= {"n_signal": len(sig), "auc": curve.auc, "max_sic": float(np.max(sic)) if sic.size else 0.0}
        lines.append(f"signal: {len(sig)} showers; AUC {curve.auc:.4f}, max SIC {summary['max_sic']:.2f} "
                     f"(plot {out / 'roc_sic.png'})")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return "\n".join(lines)
