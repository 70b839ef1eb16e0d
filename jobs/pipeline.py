"""Ray Job entrypoint: the end-to-end pipeline, simulate → ingest → train → generate → validate → calibrate → upsample.

    python jobs/pipeline.py --config jobs/configs/pipeline-demo.yaml --out /mnt/caloray/pipeline/demo

Stages, all on the connected Ray cluster and tracked in one MLflow experiment (`MLFLOW_TRACKING_URI`, else a
local store in OUT):

1. simulate the training, reference, calibration (fixed energies) and super-resolution (ds2) samples;
2. ingest the training sample with Ray Data: high-level features (Parquet) and the response table;
3. train and register three ensembles on Ray Train: Flow-I (layer energies; calibration and the generator's
   layer model), the shower generator (a voxel-flow chained to Flow-I, or a shower-vae) and a
   SuperResolutionFlow;
4. generate showers from the registered generator (`caloray.generate`: sharded, validated, tracked);
5. validate the generated showers against the held-out reference sample (two-sample tests);
6. calibrate the fixed-energy sample with the registered Flow-I (MLE energies and resolutions);
7. super-resolve the ds2 sample with the registered SuperResolutionFlow.

A parent MLflow run `pipeline` records the stage timings, headline metrics and the summary. Outputs:
OUT/sim/*, OUT/features, OUT/train/*, OUT/generated, OUT/validation, OUT/calibrated, OUT/superres,
OUT/pipeline.json and OUT/provenance.json. `--resume` continues an interrupted run in the same OUT
(trainings resume from their checkpoints; generation and calibration skip finished shards).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _entry import finish, job_parser, redact_uri, run_script

from caloray.calibrate.mle import MLESettings
from caloray.config import load_yaml, to_dict
from caloray.errors import ConfigError
from caloray.runtime import init_ray
from caloray.sim import SimConfig
from caloray.train import TrainConfig

GENERATOR_KINDS = ("voxel-flow", "shower-vae")


@dataclass
class PipelineData:
    """The simulated samples (SimConfig each). `reference`: held out, same geometry and particle as `train`;
    `calibration`: usually the fixed prior; `superres`: a regular cylindrical geometry (ds2), or none to skip
    super-resolution."""

    train: SimConfig
    reference: SimConfig
    calibration: SimConfig
    superres: SimConfig | None = None


@dataclass
class PipelineModels:
    """The trained ensembles (TrainConfig each; `data.paths`, `output_dir` and the tracking experiment and
    URI are set by the pipeline, `tracking.registry_name` must be set)."""

    flow1: TrainConfig
    generator: TrainConfig
    superres: TrainConfig | None = None


@dataclass
class GenerateStage:
    """`caloray.generate` settings (model, output and tracking come from the pipeline). Energies in MeV;
    None → log-uniform over the generator's training range."""

    n_showers: int = 1_000
    shard_size: int = 500
    energies: str | None = None
    seed: int = 0
    batch_size: int = 500
    actors: int | None = None
    validate_n: int = 500
    validate_n_iter: int = 500
    validate_alpha: float = 0.01
    validate_features: list[str] = field(default_factory=lambda: ["total-energy", "layer-energies"])
    validate_statistics: list[str] = field(default_factory=lambda: ["mean-ks", "swd"])


@dataclass
class ValidateStage:
    """Two-sample tests of the generated showers against the reference sample (ValidationConfig fields)."""

    features: list[str] = field(default_factory=lambda: ["total-energy", "layer-energies"])
    statistics: list[str] = field(default_factory=lambda: ["mean-ks", "swd"])
    batch_sizes: list[int] = field(default_factory=lambda: [200])
    n_iter: int = 100
    n_slices: int = 50
    seed: int = 0
    mode: str = "bootstrap"
    max_rows: int = 200_000


@dataclass
class CalibrateStage:
    """MLE calibration of the calibration sample with the registered Flow-I."""

    rows_per_unit: int = 4096
    batch_size: int = 1024
    seed: int = 0
    actors: int | None = None
    mle: MLESettings = field(default_factory=MLESettings)


@dataclass
class SuperresStage:
    """Upsampling of the super-resolution sample with the registered SuperResolutionFlow."""

    choice: str | list[int] = "A"
    oracle: bool | None = None
    batch_size: int = 256
    seed: int = 0
    actors: int | None = None


@dataclass
class PipelineConfig:
    """One end-to-end run. `tracking_uri` None → MLFLOW_TRACKING_URI, else a local store in the output folder."""

    data: PipelineData
    train: PipelineModels
    experiment: str = "caloray-pipeline"
    tracking_uri: str | None = None
    generate: GenerateStage = field(default_factory=GenerateStage)
    validate: ValidateStage = field(default_factory=ValidateStage)
    calibrate: CalibrateStage = field(default_factory=CalibrateStage)
    superres: SuperresStage = field(default_factory=SuperresStage)

    def __post_init__(self) -> None:
        models = {"flow1": self.train.flow1, "generator": self.train.generator, "superres": self.train.superres}
        for name, train in models.items():
            if train is not None and not train.tracking.registry_name:
                raise ConfigError(f"train.{name}.tracking.registry_name: set it (later stages load the registered "
                                  "ensemble)")
        if self.train.flow1.model.kind != "layer-energy-flow":
            raise ConfigError(f"train.flow1.model.kind must be layer-energy-flow, got {self.train.flow1.model.kind!r}")
        if self.train.generator.model.kind not in GENERATOR_KINDS:
            raise ConfigError(f"train.generator.model.kind must be one of {GENERATOR_KINDS}, "
                              f"got {self.train.generator.model.kind!r}")
        if (self.data.superres is None) != (self.train.superres is None):
            raise ConfigError("data.superres and train.superres go together: set both or neither")
        if self.train.superres is not None and self.train.superres.model.kind != "superres-flow":
            kind = self.train.superres.model.kind
            raise ConfigError(f"train.superres.model.kind must be superres-flow, got {kind!r}")
        geometries = {self.data.train.geometry, self.data.reference.geometry, self.data.calibration.geometry}
        if len(geometries) != 1:
            raise ConfigError(f"data.train, data.reference and data.calibration must share one geometry, got "
                              f"{sorted(geometries)}")


def load_config(path: str | Path) -> PipelineConfig:
    return load_yaml(PipelineConfig, path)


# ---------------------------------------------------------------------------------------------- tracking
def resolve_tracking(config: PipelineConfig, out: Path) -> str:
    """The one tracking URI of every stage; a local SQLite store in `out` gets its experiment created here
    with its artifacts under `out/mlartifacts` (MLflow would otherwise put them under the working dir)."""
    from mlflow.tracking import MlflowClient

    from caloray.tracking.store import local_artifact_location, local_tracking_uri

    uri = config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    uri = local_tracking_uri(out)
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(config.experiment) is None:
        client.create_experiment(config.experiment, artifact_location=local_artifact_location(out))
    return uri


class PipelineRun:
    """The parent MLflow run: params at start, one `seconds.STAGE` metric per stage, headline metrics,
    the summary as artifacts at the end (FAILED with the error as a tag when a stage raises)."""

    def __init__(self, uri: str, experiment: str, config: PipelineConfig) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from caloray.tracking.params import flatten_params

        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        tags = {"caloray.role": "pipeline", "caloray.ray_job_id": str(_ray_job_id())}
        self.run_id = self.client.create_run(experiment_id, run_name="pipeline", tags=tags).info.run_id
        params = flatten_params(json.loads(json.dumps(to_dict(config), default=str)))
        items = [Param(k, v[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start:start + 100])
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        self.metrics |= finite
        items = [Metric(k, v, now, 0) for k, v in finite.items()]
        for start in range(0, len(items), 500):
            self.client.log_batch(self.run_id, metrics=items[start:start + 500])

    def finish(self, artifacts: Sequence[tuple[Path, str | None]]) -> None:
        """Log (file, artifact folder or None for the top) pairs, then close the run."""
        for path, folder in artifacts:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), artifact_path=folder)
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self, error: BaseException) -> None:
        self.client.set_tag(self.run_id, "caloray.error", f"{type(error).__name__}: {error}"[:4000])
        self.client.set_terminated(self.run_id, "FAILED")


def _ray_job_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_job_id() if ray.is_initialized() else None


# ---------------------------------------------------------------------------------------------- stages
def stage_simulate(config: PipelineConfig, out: Path, *, resume: bool) -> dict[str, list[Path]]:
    from caloray.sim import simulate_to_files

    samples = {"train": config.data.train, "reference": config.data.reference,
               "calibration": config.data.calibration, "superres": config.data.superres}
    shards = {name: simulate_to_files(sim, out / "sim" / name, progress=False, skip_existing=resume)
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
    from caloray.tables import format_table

    geometry = get_geometry(config.data.train.geometry)
    files = compute_feature_files(shards, geometry, out / "features")
    features = read_feature_table(files)
    table = format_table(response_table(features["incident_energy_mev"], features["response"]),
                         title=f"E_dep/E_inc of the training sample ({geometry.name})")
    print(table, flush=True)
    (out / "features" / "summary.txt").write_text(table + "\n")
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
    result = train_ensemble(train, resume=resume and (out / "train" / name).exists())
    if result.registered is None:
        raise ConfigError(f"train.{name}: the ensemble was not registered")
    ref = f"{result.registered[0]}:{result.registered[1]}"
    losses = [m.final_val_loss for m in result.members]
    print(f"{name}: {len(result.members)} × {train.model.kind}, val_loss {np.mean(losses):.4f}, registered {ref}",
          flush=True)
    return ref, {f"train.{name}.final_val_loss_mean": float(np.mean(losses)),
                 f"train.{name}.registered_version": float(result.registered[1])}


def stage_generate(config: PipelineConfig, generator: str, flow1: str, out: Path, uri: str) -> tuple[list[Path], dict]:
    from caloray.generate import GenerationConfig, generate

    stage = config.generate
    layer_model = flow1 if config.train.generator.model.kind == "voxel-flow" else None
    generation = GenerationConfig(
        model=generator, layer_model=layer_model, n_showers=stage.n_showers, energies=stage.energies,
        seed=stage.seed, shard_size=stage.shard_size, out=str(out / "generated"), batch_size=stage.batch_size,
        tracking_uri=uri, experiment=config.experiment, actors=stage.actors, geometry=config.data.train.geometry,
        validate_n=stage.validate_n, reference=[str(out / "sim" / "reference")],
        validate_features=list(stage.validate_features), validate_statistics=list(stage.validate_statistics),
        validate_n_iter=stage.validate_n_iter, validate_alpha=stage.validate_alpha)
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
    """Calibrate with the registered Flow-I; median E_pred/E_true and 68% half-width per true energy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from caloray.pipelines.calibrate import CalibrationRun, ModelReference, calibrate_files

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
    table = pa.concat_tables([pq.read_table(s, columns=["e_pred_mev", "incident_energy_mev"]) for s in shards])
    truth, pred = table["incident_energy_mev"].to_numpy(), table["e_pred_mev"].to_numpy()
    metrics = {"calibrate.n_showers": float(len(truth))}
    lines = ["E_true [GeV]  n  median E_pred/E_true  68% half-width"]
    for energy in np.unique(np.round(truth, 3)) if len(np.unique(truth)) <= 20 else []:
        ratio = pred[np.isclose(truth, energy)] / energy
        ratio = ratio[np.isfinite(ratio)]
        if not ratio.size:
            continue
        q16, q50, q84 = np.percentile(ratio, [16, 50, 84])
        key = f"{energy / 1e3:g}GeV"
        metrics |= {f"calibrate.{key}.median_response": float(q50),
                    f"calibrate.{key}.resolution": float(0.5 * (q84 - q16))}
        lines.append(f"{energy / 1e3:12g} {ratio.size:3d} {q50:20.3f} {0.5 * (q84 - q16):16.3f}")
    ratio = pred / truth
    metrics["calibrate.median_response"] = float(np.nanmedian(ratio)) if len(ratio) else float("nan")
    text = "\n".join(lines)
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


# ---------------------------------------------------------------------------------------------- driver
def run(config: PipelineConfig, out: Path, *, resume: bool = False, gpu: bool = False) -> dict[str, Any]:
    """Run every stage into `out`; returns the summary written to OUT/pipeline.json. Ray must be connected."""
    out.mkdir(parents=True, exist_ok=True)
    uri = resolve_tracking(config, out)
    tracker = PipelineRun(uri, config.experiment, config)
    summary: dict[str, Any] = {"out": str(out), "tracking_uri": redact_uri(uri), "experiment": config.experiment,
                               "pipeline_run_id": tracker.run_id, "stages": {}, "registered": {}}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        print(f"\n== {name}", flush=True)
        began = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - began
        summary["stages"][name] = round(seconds, 2)
        tracker.log_metrics({f"seconds.{name}": seconds})
        print(f"   {name}: {seconds:.1f} s", flush=True)
        return value

    try:
        samples = stage("simulate", lambda: stage_simulate(config, out, resume=resume))
        tracker.log_metrics(stage("ingest", lambda: stage_ingest(config, samples["train"], out)))
        registered: dict[str, str] = summary["registered"]
        models = {"flow1": config.train.flow1, "generator": config.train.generator, "superres": config.train.superres}
        for name, train in models.items():
            if train is None:
                continue
            data = samples["superres" if name == "superres" else "train"]
            ref, metrics = stage(f"train-{name}", lambda n=name, t=train, d=data: stage_train(
                n, t, d, out, uri, config.experiment, resume=resume, gpu=gpu))
            registered[name] = ref
            tracker.log_metrics(metrics)
        generated, info = stage("generate", lambda: stage_generate(config, registered["generator"],
                                                                   registered["flow1"], out, uri))
        summary["generate"] = {"run_id": info["run_id"], "validation_passed": info["validation_passed"],
                               "shards": [str(p) for p in generated]}
        tracker.log_metrics(info["metrics"])
        tracker.log_metrics(stage("validate", lambda: stage_validate(config, generated, out, uri)))
        tracker.log_metrics(stage("calibrate", lambda: stage_calibrate(config, registered["flow1"],
                                                                       samples["calibration"], out, uri)))
        if "superres" in registered:
            tracker.log_metrics(stage("superres", lambda: stage_superres(config, registered["superres"],
                                                                         samples["superres"], out, uri)))
        summary["metrics"] = tracker.metrics
        (out / "pipeline.json").write_text(json.dumps(summary, indent=1, default=str))
        tracker.finish([(out / "pipeline.json", None), (out / "features" / "summary.txt", "ingest"),
                        (out / "calibrated" / "summary.txt", "calibrate")])
    except BaseException as exc:
        tracker.fail(exc)
        raise
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], out_help="output folder of this run (default outputs/pipeline)")
    parser.add_argument("--gpu", action="store_true", help="train with one GPU per Ray Train worker (use_gpu)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in the same --out")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = load_config(args.config)
    out = Path(args.out or "outputs/pipeline").resolve()
    if (out / "pipeline.json").exists() and not args.resume:
        raise ConfigError(f"{out}: holds a finished pipeline run; choose another --out")
    init_ray()
    summary = run(config, out, resume=args.resume, gpu=args.gpu)
    print(f"\npipeline: registered {summary['registered']}; stages {summary['stages']} s", flush=True)
    finish(out, config, stage="pipeline", config_file=str(args.config), registered=summary["registered"],
           pipeline_run_id=summary["pipeline_run_id"], stages=summary["stages"])
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
