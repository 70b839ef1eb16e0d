"""Workflow `score`: anomaly scores −log p(x | E_rec) of shower files (spec §5) and, with a labelled signal
sample, ROC/AUC/SIC.

E_rec is the flow's own MLE energy, never the truth; the score is the `anomaly_score` column of the resumable
calibration shards (`caloray.workflows.calibrate.calibrate_files`) that OUT/background and OUT/signal hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caloray.errors import ConfigError
from caloray.io import expand_paths
from caloray.io.checks import check_shower_inputs
from caloray.workflows import Result
from caloray.workflows.calibrate import CalibrationRun, ModelLoader, calibrate_files, model_and_range, model_voxels


@dataclass
class Config:
    """model: as for `calibrate`; inputs: background (reference) shower files, folders or globs; signal: a
    labelled signal sample (optional). Energies in MeV; unset → the model's training range. seed: the
    dequantization noise."""

    model: str
    inputs: list[str]
    out: str = "outputs/score"
    signal: list[str] = field(default_factory=list)
    energy_min_mev: float | None = None
    energy_max_mev: float | None = None
    seed: int = 0
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("score: inputs must name at least one shower file, folder or glob")


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Background and signal files against the model's voxel count, before Ray starts (as `calibrate`)."""
    voxels = model_voxels(config.model, config.tracking_uri)
    for inputs in (config.inputs, config.signal):
        if inputs:
            check_shower_inputs(inputs, voxels=voxels, check_values=check_values)


def _scores(loader: ModelLoader, energy_range: tuple[float, float], inputs: list[str], out: Path,
            seed: int) -> np.ndarray:
    run = CalibrationRun(inputs=tuple(str(p) for p in expand_paths(inputs)), out_dir=str(out),
                         energy_min_mev=energy_range[0], energy_max_mev=energy_range[1], seed=seed)
    table = pa.concat_tables([pq.read_table(s, columns=["anomaly_score"]) for s in calibrate_files(loader, run)])
    return table["anomaly_score"].to_numpy()


def run(config: Config) -> Result:
    """Score into `config.out` (background/, signal/, roc_sic.png, summary.json)."""
    from caloray.anomaly import roc_curve
    from caloray.plots.anomaly import plot_roc_and_sic

    loader, energy_range = model_and_range(config.model, config.tracking_uri,
                                           (config.energy_min_mev, config.energy_max_mev))
    out = Path(config.out)
    bkg = _scores(loader, energy_range, config.inputs, out / "background", config.seed)
    lines = [f"background: {len(bkg)} showers, median score {np.median(bkg):.3f} (shards in {out / 'background'})"]
    summary: dict[str, float | int] = {"n_background": len(bkg), "median_background": float(np.median(bkg))}
    if config.signal:
        sig = _scores(loader, energy_range, config.signal, out / "signal", config.seed)
        finite_b, finite_s = bkg[np.isfinite(bkg)], sig[np.isfinite(sig)]
        curve = roc_curve(finite_b, finite_s)
        plot_roc_and_sic(curve, finite_b, finite_s, out / "roc_sic.png")
        _, sic = curve.significance_improvement(1.0 / max(len(finite_b), 1))
        summary |= {"n_signal": len(sig), "auc": curve.auc, "max_sic": float(np.max(sic)) if sic.size else 0.0}
        lines.append(f"signal: {len(sig)} showers; AUC {curve.auc:.4f}, max SIC {summary['max_sic']:.2f} "
                     f"(plot {out / 'roc_sic.png'})")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return Result(out=out, metrics={k: float(v) for k, v in summary.items()},
                  paths={"summary": [out / "summary.json"]}, summary="\n".join(lines))
