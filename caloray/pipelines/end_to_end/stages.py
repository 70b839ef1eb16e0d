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
    from caloray.workflows import simulate

    samples = {"train": config.data.train, "reference": config.data.reference,
               "calibration": config.data.calibration, "superres": config.data.superres}
    datasets = [simulate.Dataset(name, sim) for name, sim in samples.items() if sim is not None]
    result = simulate.run(simulate.Config(out=str(out / "sim"), datasets=datasets), progress=False)
    print(result.summary, flush=True)
    return result.paths


def stage_ingest(config: PipelineConfig, shards: list[Path], out: Path) -> dict[str, float]:
    """Ray Data: features of the training sample → OUT/features (Parquet) and OUT/features/summary.txt."""
    from caloray.features import response_table
    from caloray.geometry import get_geometry
    from caloray.pipelines.features import read_feature_table
    from caloray.plots.summary import plot_layer_energies, plot_response
    from caloray.tables import format_table
    from caloray.workflows import features as workflow

    geometry = get_geometry(config.data.train.geometry)
    files = workflow.run(workflow.Config(inputs=[str(p) for p in shards], geometry=geometry.name,
                                         out=str(out / "features"))).paths["features"]
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
    from caloray.workflows import train as workflow

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
    result = workflow.run(train, resume=resume and (out / "train" / name).exists()).detail
    if result.registered is None:
        raise ConfigError(f"train.{name}: the ensemble was not registered")
    ref = f"{result.registered[0]}:{result.registered[1]}"
    losses = [m.final_val_loss for m in result.members]
    print(f"{name}: {len(result.members)} × {train.model.kind}, val_loss {np.mean(losses):.4f}, registered {ref}",
          flush=True)
    metrics = {f"train.{name}.final_val_loss_mean": float(np.mean(losses))}  # the version is a tag, not a metric
    write_json_atomic(marker, {"ref": ref, "metrics": metrics, "config": identity})
    return ref, metrics


def _prefixed(stage: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{stage}.{k}": v for k, v in metrics.items()}


def stage_generate(config: PipelineConfig, generator: str, flow1: str, out: Path, uri: str) -> tuple[list[Path], dict]:
    """Generate from the registered generator (chained to Flow-I when it is a Flow-II or `config.layer_energies`
    is "flow1"), validated against the reference sample; the info names the generator and its tests' p-values."""
    from caloray.generate.models import CHAIN_KINDS
    from caloray.workflows import generate

    chained = config.train.generator.model.kind in CHAIN_KINDS or config.layer_energies == "flow1"
    layer_model = flow1 if chained else None
    result = generate.run(dataclasses.replace(
        config.generate, model=generator, layer_model=layer_model, out=str(out / "generated"), tracking_uri=uri,
        experiment=config.experiment, geometry=config.data.train.geometry, reference=[str(out / "sim" / "reference")]),
        progress=False)
    print(f"generate: {result.summary}", flush=True)
    kind = config.train.generator.model.kind
    validation = getattr(result.detail, "validation", None)
    tests = [] if validation is None else [
        {k: row[k] if isinstance(row[k], str | bool) else float(row[k])
         for k in ("feature", "statistic", "p_value", "p_floor", "auc") if row.get(k) is not None}
        for row in validation.rows]
    return result.paths["shards"], {"metrics": _prefixed("generate", result.metrics),
                                    "run_id": result.detail.mlflow_run_id, "validation_passed": result.passed,
                                    "generator": f"layer-energy-flow → {kind}" if chained else kind,
                                    "models": [generator, flow1] if chained else [generator], "tests": tests,
                                    "threshold": None if validation is None else validation.threshold}


def stage_validate(config: PipelineConfig, candidate: list[Path], out: Path, uri: str) -> dict[str, float]:
    from caloray.workflows import validate

    result = validate.run(dataclasses.replace(
        config.validate, reference=[str(out / "sim" / "reference")], candidate=[str(p) for p in candidate],
        geometry=config.data.train.geometry, out=str(out / "validation"), experiment=config.experiment,
        tracking_uri=uri))
    return _prefixed("validate", result.metrics)


def stage_calibrate(config: PipelineConfig, flow1: str, inputs: list[Path], out: Path, uri: str) -> dict[str, float]:
    """Calibrate the calibration sample with the registered Flow-I (its training range); the bias table goes to
    OUT/calibrated/summary.txt and the metrics."""
    from caloray.workflows import calibrate

    result = calibrate.run(dataclasses.replace(config.calibrate, model=flow1, inputs=tuple(str(p) for p in inputs),
                                               out_dir=str(out / "calibrated"), tracking_uri=uri))
    print(result.summary, flush=True)
    return _prefixed("calibrate", result.metrics)


def stage_superres(config: PipelineConfig, model: str, inputs: list[Path], out: Path, uri: str) -> dict[str, float]:
    """Upsample with the registered SuperResolutionFlow; checks that every shower keeps its energy."""
    from caloray.workflows import superres

    assert config.data.superres is not None
    result = superres.run(dataclasses.replace(config.superres, model=model, inputs=[str(p) for p in inputs],
                                              out=str(out / "superres"), geometry=config.data.superres.geometry,
                                              tracking_uri=uri))
    print(f"superres: {result.summary}", flush=True)
    return _prefixed("superres", result.metrics)
