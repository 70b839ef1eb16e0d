"""`caloray calibration-study`: the MLE-calibration paper's experiment on simulated ECAL+HCAL pions.

Ensembles of Flow-I models and of DNN regressors are trained on a uniform and on a log-uniform E_inc
prior; fixed-energy evaluation sets (10 … 90 GeV) are calibrated (flows: batched MLE with per-shower
intervals through the Ray Data pipeline; DNNs: ensemble-mean prediction); per (method, prior, E_true)
the mode of E_pred/E_true (KDE + bootstraps) and its uncertainty, the full resolution, the mean
per-shower resolution and the asymmetry are tabulated, plotted and logged to MLflow.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from caloray.calibrate import FLAG_AT_LOWER_EDGE, FLAG_AT_UPPER_EDGE, MLESettings, bootstrap_mode, full_resolution
from caloray.config import to_dict
from caloray.features import response
from caloray.io import read_shower_file, read_showers
from caloray.models import Ensemble
from caloray.plots import calibration as plots
from caloray.provenance import write_provenance
from caloray.sim import Physics, SimConfig, simulate_to_files
from caloray.tables import format_table
from caloray.tracking.report import log_report
from caloray.train.config import (
    DataSpec,
    EnsembleConfig,
    ModelSpec,
    OptimizerConfig,
    ScheduleConfig,
    TrackingConfig,
    TrainConfig,
)
from caloray.train.ensemble import train_ensemble
from caloray.train.result import TrainResult
from caloray.workflows.calibrate import CalibrationRun, MemberFilesLoader, calibrate_files

PRIORS = ("uniform", "log-uniform")


@dataclass
class MethodSettings:
    """Training settings of one method's ensembles (both priors)."""

    members: int = 3
    epochs: int = 12
    batch_size: int = 200
    lr: float = 1e-3
    milestones: list[int] = field(default_factory=lambda: [6, 9])
    model_kwargs: dict = field(default_factory=dict)


@dataclass
class CalibrationStudyConfig:
    """The study; energies in GeV. Paper scale: 10 members, ≥ 100k training and 100k evaluation showers."""

    out: str = "outputs/calibration-study"
    geometry: str = "ecal-hcal"
    energy_min_gev: float = 1.0
    energy_max_gev: float = 100.0
    n_train: int = 40_000
    eval_energies_gev: list[float] = field(default_factory=lambda: [10.0 * k for k in range(1, 10)])
    n_eval: int = 1_000
    seed: int = 7
    n_bootstrap: int = 20
    flow: MethodSettings = field(default_factory=MethodSettings)
    dnn: MethodSettings = field(default_factory=lambda: MethodSettings(epochs=20, milestones=[10, 15]))
    mle: MLESettings = field(default_factory=lambda: MLESettings(n_scan=48, rtol=1e-5))
    experiment: str = "caloray-calibration-study"
    tracking_uri: str | None = None
    physics: Physics = field(default_factory=Physics)  # simulator parameters of every sample of the study


def _simulate(config: CalibrationStudyConfig, out: Path) -> dict[str, list[Path]]:
    common = {"geometry": config.geometry, "particle": "pion", "energy_min_mev": config.energy_min_gev * 1e3,
              "energy_max_mev": config.energy_max_gev * 1e3, "physics": config.physics}
    sets: dict[str, list[Path]] = {}
    for i, prior in enumerate(PRIORS):
        sim = SimConfig(prior=prior, n_showers=config.n_train, seed=config.seed * 100 + i, **common)
        sets[f"train-{prior}"] = simulate_to_files(sim, out / "data" / f"train-{prior}")
    for k, energy in enumerate(config.eval_energies_gev):
        sim = SimConfig(prior="fixed", energies_mev=(energy * 1e3,), n_showers=config.n_eval,
                        seed=config.seed * 100 + 50 + k, **common)
        sets[f"eval-{energy:g}"] = simulate_to_files(sim, out / "data" / f"eval-{energy:g}GeV")
    return sets


def _train(config: CalibrationStudyConfig, method: str, prior: str, paths: list[Path], out: Path,
           tracking_uri: str | None) -> TrainResult:
    settings = config.flow if method == "flow" else config.dnn
    kind = "layer-energy-flow" if method == "flow" else "energy-regressor"
    train_config = TrainConfig(
        model=ModelSpec(kind=kind, kwargs=dict(settings.model_kwargs)),
        data=DataSpec(paths=[str(p) for p in paths], geometry=config.geometry),
        optimizer=OptimizerConfig(lr=settings.lr),
        schedule=ScheduleConfig(kind="multistep", milestones=list(settings.milestones), gamma=0.5),
        ensemble=EnsembleConfig(members=settings.members),
        tracking=TrackingConfig(experiment=config.experiment, tracking_uri=tracking_uri,
                                registry_name=f"calibration-study-{method}-{prior}"),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=config.seed * 10 + (0 if method == "flow" else 5) + PRIORS.index(prior),
        output_dir=str(out / "models" / f"{method}-{prior}"),
    )
    return train_ensemble(train_config, read_showers(paths), resume=True)


def _dnn_predictions(ensemble: Ensemble, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    showers, energies = [], []
    for path in paths:
        data = read_shower_file(path)
        showers.append(data["showers"])
        energies.append(data["incident_energies"])
    batch = {"showers": torch.as_tensor(np.concatenate(showers), dtype=torch.float64),
             "incident_energies": torch.as_tensor(np.concatenate(energies), dtype=torch.float64)}
    with torch.no_grad():
        predicted = ensemble.double().eval().predict(batch).cpu().numpy()
    return predicted, batch["incident_energies"].numpy()


def _ratio_metrics(ratios: np.ndarray, config: CalibrationStudyConfig, seed: int) -> dict[str, float]:
    estimate = bootstrap_mode(ratios, config.n_bootstrap, seed=seed)
    return {"mode": estimate.mode, "mode_unc": estimate.uncertainty, "bias": estimate.bias,
            "full_resolution": full_resolution(ratios, estimate.mode)}


def run_calibration_study(config: CalibrationStudyConfig) -> list[dict]:
    """Run the study end to end; returns the metrics rows (also written to `<out>/metrics.csv`)."""
    from caloray.tracking.store import resolve_tracking_uri

    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tracking_uri, _ = resolve_tracking_uri(out, config.tracking_uri)
    t0 = time.perf_counter()
    print("== simulating training and evaluation sets", flush=True)
    sets = _simulate(config, out)
    rows: list[dict] = []
    flow_results: dict[str, pa.Table] = {}
    for method in ("flow", "dnn"):
        for prior in PRIORS:
            print(f"== training {method} ensemble on the {prior} prior", flush=True)
            trained = _train(config, method, prior, sets[f"train-{prior}"], out, tracking_uri)
            members = [str(m.model_path) for m in trained.members]
            for k, energy in enumerate(config.eval_energies_gev):
                paths = sets[f"eval-{energy:g}"]
                if method == "flow":
                    run = CalibrationRun(inputs=tuple(str(p) for p in paths),
                                         out_dir=str(out / "calibrated" / f"{prior}-{energy:g}GeV"),
                                         energy_min_mev=config.energy_min_gev * 1e3,
                                         energy_max_mev=config.energy_max_gev * 1e3, seed=config.seed, mle=config.mle)
                    shards = calibrate_files(MemberFilesLoader(members), run)
                    table = pa.concat_tables([pq.read_table(s) for s in shards])
                    flow_results[f"{prior}-{energy:g}"] = table
                    e_pred = table["e_pred_mev"].to_numpy()
                    e_true = table["incident_energy_mev"].to_numpy()
                    flags = table["flags"].to_numpy()
                    resolution = table["resolution_mev"].to_numpy() / e_true
                    asymmetry = table["asymmetry"].to_numpy()
                else:
                    e_pred, e_true = _dnn_predictions(trained.ensemble(), paths)
                    flags = np.zeros(len(e_pred), dtype=np.int64)
                    resolution = asymmetry = np.full(len(e_pred), np.nan)
                ratios = e_pred / e_true
                metrics = _ratio_metrics(ratios, config, seed=config.seed + k)
                rows.append({
                    "method": method, "prior": prior, "E_true [GeV]": energy, **metrics,
                    "mean_shower_resolution": float(np.nanmean(resolution)) if method == "flow" else float("nan"),
                    "median_asymmetry": float(np.nanmedian(asymmetry)) if method == "flow" else float("nan"),
                    "frac_asymmetry_gt_1": float(np.nanmean(asymmetry > 1)) if method == "flow" else float("nan"),
                    "frac_at_edge": float(np.mean((flags & (FLAG_AT_LOWER_EDGE | FLAG_AT_UPPER_EDGE)) > 0)),
                    "n": len(ratios),
                })
    _report(config, out, rows, flow_results, sets, tracking_uri, time.perf_counter() - t0)
    return rows


def _report(config: CalibrationStudyConfig, out: Path, rows: list[dict], flow_results: dict[str, pa.Table],
            sets: dict[str, list[Path]], tracking_uri: str, seconds: float) -> None:
    table = format_table(rows, title="calibration study: mode of E_pred/E_true, bias, resolutions")
    print(table)
    (out / "metrics.txt").write_text(table + "\n")
    with (out / "metrics.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    figures = [
        plots.plot_bias(rows, out / "plots" / "bias_vs_energy.png"),
        plots.plot_resolution(rows, out / "plots" / "resolution_vs_energy.png"),
    ]
    mid = min(config.eval_energies_gev, key=lambda e: abs(e - 50.0))
    key = f"uniform-{mid:g}"
    if key in flow_results:
        t = flow_results[key]
        e_true = t["incident_energy_mev"].to_numpy()
        figures.append(plots.plot_error_vs_resolution(
            t["e_pred_mev"].to_numpy() / e_true, t["resolution_mev"].to_numpy() / e_true,
            out / "plots" / "error_vs_shower_resolution.png", title=f"flow, uniform prior, {mid:g} GeV"))
        figures.append(plots.plot_asymmetry(t["asymmetry"].to_numpy(), out / "plots" / "asymmetry.png",
                                            title=f"flow, uniform prior, {mid:g} GeV"))
    train = [read_shower_file(p) for p in sets["train-uniform"]]
    e_inc = np.concatenate([d["incident_energies"] for d in train])
    e_dep = np.concatenate([response(d["showers"], d["incident_energies"]) for d in train]) * e_inc
    figures.append(plots.plot_edep_vs_einc(e_inc / 1e3, e_dep / 1e3, out / "plots" / "edep_vs_einc.png"))
    provenance = write_provenance(out / "provenance.json", config, stage="calibration-study", seconds=seconds)

    metrics = {}
    for row in rows:
        prefix = f"{row['method']}.{row['prior']}.{row['E_true [GeV]']:g}GeV"
        for key in ("mode", "mode_unc", "bias", "full_resolution", "mean_shower_resolution", "median_asymmetry"):
            metrics[f"{prefix}.{key}"] = row[key]
    log_report(out, config.experiment, "calibration-study", params=to_dict(config), metrics=metrics,
               artifacts=[*figures, out / "metrics.csv", out / "metrics.txt", provenance],
               tracking_uri=config.tracking_uri)
