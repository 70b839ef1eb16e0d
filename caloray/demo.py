"""`caloray demo`: the embedded end-to-end run on built-in simulated data (what `make run` does).

Stages: simulate a small sample with Ray → ingest it with Ray Data → compute high-level features
(Parquet, PNG plots, response table) → train a small Flow-I ensemble on Ray Train, tracked and registered
in MLflow → calibrate fixed-energy evaluation showers with the registered ensemble (Ray Data actors) and
print the bias table.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from caloray.calibrate import MLESettings, bootstrap_mode, full_resolution
from caloray.features import response_table
from caloray.geometry import get_geometry
from caloray.io import read_showers
from caloray.pipelines.calibrate import CalibrationRun, MemberFilesLoader, ModelReference, calibrate_files
from caloray.pipelines.features import compute_feature_files, read_feature_table
from caloray.plots.summary import plot_layer_energies, plot_response
from caloray.provenance import write_provenance
from caloray.sim import SimConfig, simulate_to_files
from caloray.tables import format_table
from caloray.tracking import local_tracking_uri, ui_command
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


@dataclass
class DemoTraining:
    """The demo ensemble: a few Flow-I members, briefly trained (the paper uses 10 members, lr 1e-4)."""

    members: int = 3
    epochs: int = 6
    lr: float = 1e-3
    milestones: list[int] = field(default_factory=lambda: [3, 5])
    registry_name: str = "demo-flow1-ecal-hcal"


@dataclass
class DemoConfig:
    """The demo's settings: a simulated sample (ECAL+HCAL pions, 1–100 GeV, log-uniform by default)."""

    out: str = "outputs/demo"
    sim: SimConfig = field(default_factory=lambda: SimConfig(
        geometry="ecal-hcal", particle="pion", prior="log-uniform", energy_min_mev=1_000.0,
        energy_max_mev=100_000.0, n_showers=20_000, shard_size=5_000, seed=20261123))
    train: DemoTraining = field(default_factory=DemoTraining)
    eval_energies_gev: list[float] = field(default_factory=lambda: [10.0, 30.0, 50.0, 70.0, 90.0])
    n_eval: int = 300
    n_validate: int = 4000
    validation_batch_size: int = 500
    validation_replicates: int = 200


def _stage(name: str) -> float:
    print(f"\n== {name}", flush=True)
    return time.perf_counter()


def run_demo(config: DemoConfig) -> dict[str, Path | list[Path]]:
    """Run every demo stage; returns the main output paths."""
    out = Path(config.out)
    geometry = get_geometry(config.sim.geometry)
    outputs: dict[str, Path | list[Path]] = {}

    t0 = _stage(f"simulate {config.sim.n_showers} {config.sim.resolved_particle} showers on {geometry.describe()}")
    shards = simulate_to_files(config.sim, out / "showers")
    print(f"   {len(shards)} HDF5 shards in {out / 'showers'} ({time.perf_counter() - t0:.1f} s)")
    outputs["showers"] = shards

    t0 = _stage("ingest with Ray Data and compute high-level features")
    feature_files = compute_feature_files(shards, geometry, out / "features")
    features = read_feature_table(feature_files)
    print(f"   {len(features['response'])} rows → {out / 'features'} ({time.perf_counter() - t0:.1f} s)")
    outputs["features"] = feature_files

    _stage("summary")
    rows = response_table(features["incident_energy_mev"], features["response"])
    table = format_table(rows, title=f"E_dep/E_inc of simulated {config.sim.resolved_particle}s ({geometry.name})")
    print(table)
    (out / "summary.txt").write_text(table + "\n")
    outputs["layer_plot"] = plot_layer_energies(features["layer_energies_mev"], out / "plots" / "layer_energies.png",
                                                title=f"{geometry.name} layer energies")
    outputs["response_plot"] = plot_response(features["incident_energy_mev"], features["response"],
                                             out / "plots" / "response.png", title=f"{geometry.name} response")
    print(f"   plots in {out / 'plots'}, table in {out / 'summary.txt'}")

    t0 = _stage(f"train {config.train.members} × Flow-I on Ray Train, tracked in MLflow")
    result = train_ensemble(_train_config(config, shards, out), read_showers(shards, geometry=geometry),
                            resume=(out / "train-flow1").exists())
    for member in result.members:
        print(f"   member {member.index}: val_loss {member.final_val_loss:.4f}")
    print(f"   ({time.perf_counter() - t0:.1f} s) registered {result.registered}")

    t0 = _stage(f"calibrate {config.n_eval} showers at each of {config.eval_energies_gev} GeV with the ensemble")
    rows = _calibrate_demo(config, out, result)
    table = format_table(rows, title="flow MLE calibration of the demo ensemble (E_pred/E_true)")
    print(table)
    (out / "calibration.txt").write_text(table + "\n")
    print(f"   ({time.perf_counter() - t0:.1f} s) shards in {out / 'calibrated'}")

    t0 = _stage(f"validate {config.n_validate} generated layer-energy vectors against held-out simulated showers")
    table = _validate_demo(config, out, result)
    print(table)
    (out / "validation.txt").write_text(table + "\n")
    print(f"   ({time.perf_counter() - t0:.1f} s) replicates and plots in {out / 'validation'}")
    if result.tracking_uri:
        print(f"\nMLflow UI: {ui_command(result.tracking_uri, result.output_dir)}")
    outputs["provenance"] = write_provenance(out / "provenance.json", config, stage="demo",
                                             registered_model=list(result.registered or ()))
    return outputs


def _train_config(config: DemoConfig, shards: list[Path], out: Path) -> TrainConfig:
    return TrainConfig(
        model=ModelSpec(kind="layer-energy-flow"),
        data=DataSpec(paths=[str(p) for p in shards], geometry=config.sim.geometry),
        optimizer=OptimizerConfig(lr=config.train.lr),
        schedule=ScheduleConfig(kind="multistep", milestones=list(config.train.milestones), gamma=0.5),
        ensemble=EnsembleConfig(members=config.train.members),
        tracking=TrackingConfig(experiment="caloray-demo", registry_name=config.train.registry_name,
                                tracking_uri=local_tracking_uri(out)),
        epochs=config.train.epochs,
        seed=config.sim.seed,
        output_dir=str(out / "train-flow1"),
    )


def _calibrate_demo(config: DemoConfig, out: Path, result: TrainResult) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sim = config.sim
    rows = []
    for k, energy in enumerate(config.eval_energies_gev):
        eval_sim = SimConfig(geometry=sim.geometry, particle=sim.particle, prior="fixed", energies_mev=(energy * 1e3,),
                             n_showers=config.n_eval, seed=sim.seed + 1 + k)
        paths = simulate_to_files(eval_sim, out / "eval" / f"{energy:g}GeV", progress=False)
        name, version = result.registered or (None, None)
        loader = ModelReference(f"{name}:{version}", tracking_uri=result.tracking_uri) if name else \
            MemberFilesLoader([str(m.model_path) for m in result.members])
        run = CalibrationRun(inputs=tuple(str(p) for p in paths), out_dir=str(out / "calibrated" / f"{energy:g}GeV"),
                             energy_min_mev=sim.energy_min_mev, energy_max_mev=sim.energy_max_mev, seed=sim.seed,
                             mle=MLESettings(n_scan=48, rtol=1e-5))
        table = pa.concat_tables([pq.read_table(p) for p in calibrate_files(loader, run)])
        ratios = table["e_pred_mev"].to_numpy() / table["incident_energy_mev"].to_numpy()
        mode = bootstrap_mode(ratios, 20, seed=k)
        shower_resolution = table["resolution_mev"].to_numpy() / table["incident_energy_mev"].to_numpy()
        rows.append({"E_true [GeV]": energy, "mode": mode.mode, "±": mode.uncertainty, "bias": mode.bias,
                     "full resolution": full_resolution(ratios, mode.mode),
                     "mean per-shower resolution": float(np.nanmean(shower_resolution)),
                     "Δ_L/Δ_U > 1": float(np.nanmean(table["asymmetry"].to_numpy() > 1))})
    return rows


def _validate_demo(config: DemoConfig, out: Path, result: TrainResult) -> str:
    """Flow-I samples at the E_inc of a held-out simulated sample vs that sample's layer energies."""
    import torch

    from caloray.features import layer_energies
    from caloray.io import read_shower_file
    from caloray.pipelines.validate import summary_rows, validate_arrays

    sim = config.sim
    held_out = dataclasses.replace(sim, n_showers=config.n_validate, seed=sim.seed + 1000, shard_size=None)
    paths = simulate_to_files(held_out, out / "heldout", progress=False)
    data = [read_shower_file(p) for p in paths]
    geometry = get_geometry(sim.geometry)
    reference = np.concatenate([layer_energies(d["showers"], geometry) for d in data])
    energies = torch.as_tensor(np.concatenate([d["incident_energies"] for d in data]), dtype=torch.float32)
    torch.manual_seed(sim.seed)
    with torch.no_grad():
        generated = result.ensemble().eval().sample(energies)["layer_energies"].double().numpy()
    # Layer energies span six decades: compare them in log10 (the Flow-I feature scale). Both samples are
    # standardized with the reference's mean and std, so the polynomial MMD kernel sees O(1) inputs.
    def standardized(ref: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = ref.mean(0), ref.std(0) + 1e-12
        return (ref - mean) / std, (gen - mean) / std

    features = {
        "log10 layer energies": standardized(np.log10(reference + 1e-3), np.log10(generated + 1e-3)),
        "total energy": standardized(reference.sum(1, keepdims=True), generated.sum(1, keepdims=True)),
    }
    table = validate_arrays(features, ["mean-ks", "sks", "swd", "mmd", "fgd"], [config.validation_batch_size],
                            n_iter=config.validation_replicates, seed=sim.seed, backend="ray",
                            out_dir=out / "validation")
    return format_table(summary_rows(table), title="generated (demo ensemble) vs simulated layer energies")
