"""The pipeline's stages: each runs one workflow on the connected Ray cluster and returns its metrics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from caloray.config import to_dict
from caloray.errors import ConfigError
from caloray.pipelines.end_to_end.config import PipelineConfig
from caloray.provenance import write_json_atomic
from caloray.train import TrainConfig

#: Written next to a finished training: its registry reference, metrics and config, for `--resume`.
REGISTERED_FILE = "registered.json"


def stage_simulate(config: PipelineConfig, out: Path) -> dict[str, list[Path]]:
    from caloray.sim import simulate_to_files

    samples = {"train": config.data.train, "reference": config.data.reference,
               "calibration": config.data.calibration, "superres": config.data.superres}
    shards = {name: simulate_to_files(sim, out / "sim" / name, progress=False)
              for name, sim in samples.items() if sim is not None}
    for name, paths in shards.items():
        print(f"   {name}: {samples[name].n_showers} {samples[name].resolved_particle}s "
              f"({samples[name].geometry}) in {len(paths)} shard(s)", flush=True)
    return shards


def stage_ingest(config: PipelineConfig, shards: list[Path], out: Path) -> dict[str, float]:
    """Ray Data: features of the training sample → OUT/features (Parquet) and OUT/features/summary.txt."""
    from caloray.features import response_table
    from caloray.geometry import get_geometry
    from caloray.pipelines.features import compute_feature_files, read_feature_table
    from caloray.plots.summary import plot_layer_energies, plot_response
    from caloray.tables import format_table

    geometry = get_geometry(config.data.train.geometry)
    files = compute_feature_files(shards, geometry, out / "features")
    features = read_feature_table(files)
    table = format_table(response_table(features["incident_energy_mev"], features["response"]),
                         title=f"E_dep/E_inc of the training sample ({geometry.name})")
    print(table, flush=True)
    (out / "features" / "summary.txt").write_text(table + "\n")
    plot_layer_energies(features["layer_energies_mev"], out / "features" / "layer_energies.png",
                        title=f"{geometry.name} layer energies (training sample)")
    plot_response(features["incident_energy_mev"], features["response"], out / "features" / "response.png",
                  title=f"{geometry.name} E_dep/E_inc (training sample)")
    response = np.asarray(features["response"], dtype=np.float64)
    return {"ingest.n_showers": float(len(response)), "ingest.mean_response": float(np.mean(response)),
            "ingest.n_feature_files": float(len(files))}


def stage_train(name: str, train: TrainConfig, data: list[Path], out: Path, uri: str, experiment: str, *,
                resume: bool, gpu: bool) -> tuple[str, dict[str, float]]:
    """Train and register one ensemble; returns its registry reference NAME:VERSION and metrics."""
    from caloray.train import train_ensemble

    train = dataclasses.replace(
        train,
        data=dataclasses.replace(train.data, paths=[str(p) for p in data]),
        ensemble=dataclasses.replace(train.ensemble, use_gpu=train.ensemble.use_gpu or gpu),
        tracking=dataclasses.replace(train.tracking, enabled=True, experiment=experiment, tracking_uri=uri),
        output_dir=str(out / "train" / name),
    )
    marker = out / "train" / name / REGISTERED_FILE
    identity = json.loads(json.dumps(to_dict(train), default=str))
    if resume and marker.is_file():
        done = json.loads(marker.read_text())
        if done.get("config") == identity:  # finished and registered by an earlier run: reuse that version,
            print(f"{name}: reusing {done['ref']} (finished earlier)", flush=True)  # so later stages see the
            return done["ref"], done["metrics"]  # same model reference (generation refuses a changed one)
    result = train_ensemble(train, resume=resume and (out / "train" / name).exists())
    if result.registered is None:
        raise ConfigError(f"train.{name}: the ensemble was not registered")
    ref = f"{result.registered[0]}:{result.registered[1]}"
    losses = [m.final_val_loss for m in result.members]
    print(f"{name}: {len(result.members)} × {train.model.kind}, val_loss {np.mean(losses):.4f}, registered {ref}",
          flush=True)
    metrics = {f"train.{name}.final_val_loss_mean": float(np.mean(losses))}  # the version is a tag, not a metric
    write_json_atomic(marker, {"ref": ref, "metrics": metrics, "config": identity})
    return ref, metrics


def stage_generate(config: PipelineConfig, generator: str, flow1: str, out: Path, uri: str) -> tuple[list[Path], dict]:
    from caloray.generate import GenerationConfig, generate

    stage = config.generate
    from caloray.generate.models import CHAIN_KINDS

    layer_model = flow1 if config.train.generator.model.kind in CHAIN_KINDS else None
    generation = GenerationConfig(
        model=generator, layer_model=layer_model, n_showers=stage.n_showers, energies=stage.energies,
        seed=stage.seed, shard_size=stage.shard_size, out=str(out / "generated"), batch_size=stage.batch_size,
        tracking_uri=uri, experiment=config.experiment, actors=stage.actors, geometry=config.data.train.geometry,
        validate_n=stage.validate_n, reference=[str(out / "sim" / "reference")],
        validate_features=list(stage.validate_features), validate_statistics=list(stage.validate_statistics),
        validate_n_iter=stage.validate_n_iter, validate_alpha=stage.validate_alpha,
        validate_max_auc=stage.validate_max_auc)
    result = generate(generation, progress=False)
    print(f"generate: {result.n_showers} showers in {len(result.shards)} shard(s), "
          f"{result.showers_per_s:.0f} showers/s, validation passed: {result.validation_passed}", flush=True)
    metrics = {"generate.n_showers": float(result.n_showers), "generate.showers_per_s": result.showers_per_s}
    if result.validation_passed is not None:
        metrics["generate.validation_passed"] = float(result.validation_passed)
    return list(result.shards), {"metrics": metrics, "run_id": result.mlflow_run_id,
                                 "validation_passed": result.validation_passed}


def stage_validate(config: PipelineConfig, candidate: list[Path], out: Path, uri: str) -> dict[str, float]:
    from caloray.io import expand_paths
    from caloray.pipelines.validate import ValidationConfig, validate_files

    stage = config.validate
    validation = ValidationConfig(
        reference=[str(p) for p in expand_paths([str(out / "sim" / "reference")])],
        candidate=[str(p) for p in candidate], geometry=config.data.train.geometry, out=str(out / "validation"),
        features=list(stage.features), statistics=list(stage.statistics), batch_sizes=list(stage.batch_sizes),
        n_iter=stage.n_iter, n_slices=stage.n_slices, seed=stage.seed, mode=stage.mode, max_rows=stage.max_rows,
        experiment=config.experiment, tracking_uri=uri)
    table = validate_files(validation)
    p_values = [p for p in table["p_value"].to_pylist() if p is not None]
    return {"validate.n_tests": float(table.num_rows),
            "validate.min_p_value": float(min(p_values)) if p_values else float("nan")}


def stage_calibrate(config: PipelineConfig, flow1: str, inputs: list[Path], out: Path, uri: str) -> dict[str, float]:
    """Calibrate with the registered Flow-I; the bias table (KDE mode of E_pred/E_true with bootstraps, full and
    mean per-shower resolution, asymmetry) per true energy → OUT/calibrated/summary.txt and metrics."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caloray.calibrate import bias_table
    from caloray.pipelines.calibrate import CalibrationRun, ModelReference, calibrate_files
    from caloray.tables import format_table

    stage = config.calibrate
    reference = ModelReference(flow1, tracking_uri=uri)
    energy_range = reference.energy_range_mev()
    if energy_range is None:
        raise ConfigError(f"calibrate: {flow1} records no training energy range")
    run = CalibrationRun(inputs=tuple(str(p) for p in inputs), out_dir=str(out / "calibrated"),
                         energy_min_mev=energy_range[0], energy_max_mev=energy_range[1],
                         rows_per_unit=stage.rows_per_unit, batch_size=stage.batch_size, seed=stage.seed,
                         actors=stage.actors, mle=stage.mle)
    shards = calibrate_files(reference, run, provenance={"model": flow1, "seed": str(stage.seed)})
    columns = ["e_pred_mev", "incident_energy_mev", "resolution_mev", "asymmetry"]
    table = pa.concat_tables([pq.read_table(s, columns=columns) for s in shards])
    truth, pred = table["incident_energy_mev"].to_numpy(), table["e_pred_mev"].to_numpy()
    metrics = {"calibrate.n_showers": float(len(truth)),
               "calibrate.median_response": float(np.nanmedian(pred / truth)) if len(truth) else float("nan")}
    if 0 < len(np.unique(truth)) <= stage.max_table_energies:
        rows = bias_table(truth, pred, table["resolution_mev"].to_numpy(), table["asymmetry"].to_numpy(),
                          n_bootstrap=stage.n_bootstrap, seed=stage.seed)
        for row in rows:
            key = f"calibrate.{row['E_true [GeV]']:g}GeV"
            metrics |= {f"{key}.mode": row["mode"], f"{key}.mode_unc": row["±"],
                        f"{key}.full_resolution": row["full resolution"],
                        f"{key}.mean_shower_resolution": row["mean per-shower resolution"],
                        f"{key}.frac_asymmetry_above_1": row["Δ_L/Δ_U > 1"]}
        text = format_table(rows, title=f"flow MLE calibration with {flow1}: E_pred/E_true per true energy")
    else:
        text = (f"{len(truth)} showers calibrated with {flow1}; median E_pred/E_true "
                f"{metrics['calibrate.median_response']:.4f} (no fixed-energy table: the sample has "
                f"{len(np.unique(truth))} distinct true energies)")
    print(text, flush=True)
    (out / "calibrated" / "summary.txt").write_text(text + "\n")
    return metrics


def stage_superres(config: PipelineConfig, model: str, inputs: list[Path], out: Path, uri: str) -> dict[str, float]:
    """Upsample with the registered SuperResolutionFlow; checks that every shower keeps its energy."""
    from caloray.io import read_shower_file
    from caloray.superres.pipeline import upsample_files

    assert config.data.superres is not None
    stage = config.superres
    choice = stage.choice if isinstance(stage.choice, str) else tuple(int(g) for g in stage.choice)
    shards = upsample_files(model, [str(p) for p in inputs], out / "superres", geometry=config.data.superres.geometry,
                            choice=choice, oracle=stage.oracle, batch_size=stage.batch_size, seed=stage.seed,
                            tracking_uri=uri, actors=stage.actors)
    fine = np.concatenate([read_shower_file(p)["showers"].sum(axis=1) for p in inputs])
    upsampled = np.concatenate([read_shower_file(p)["showers"].sum(axis=1) for p in shards])
    kept = float(np.sum(upsampled) / np.sum(fine)) if np.sum(fine) > 0 else float("nan")
    print(f"superres: {len(upsampled)} showers in {len(shards)} shard(s); energy kept {kept:.4f}", flush=True)
    return {"superres.n_showers": float(len(upsampled)), "superres.n_shards": float(len(shards)),
            "superres.energy_kept": kept}
