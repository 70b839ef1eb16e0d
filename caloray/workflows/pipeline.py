"""Workflow `pipeline`: simulate → ingest → train → generate → validate → calibrate → super-resolve, every stage
in order under one parent MLflow run, and its closing summary; `demo` is this workflow on the embedded demo
config. Each stage runs one workflow (its `run` with its `Config`) on the connected Ray cluster and returns
its metrics.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from caloray.config import to_dict, wired
from caloray.errors import ConfigError
from caloray.generate.config import GenerationConfig
from caloray.provenance import write_json_atomic, write_provenance
from caloray.runtime import ray_job_id
from caloray.sim import SimConfig
from caloray.tracking.run import Run
from caloray.tracking.store import redact_uri, ui_command
from caloray.train import TrainConfig
from caloray.workflows import Result, workflow
from caloray.workflows.calibrate import Config as CalibrateConfig
from caloray.workflows.superres import Config as SuperresConfig
from caloray.workflows.validate import ValidationConfig

#: Generator kinds the pipeline trains from scratch in its single generator stage: a Flow-II (chained to the
#: pipeline's Flow-I) or a complete-shower model. `voxel-flow-student` is not one: it distils an already trained
#: voxel-flow teacher (a checkpoint named in its kwargs), which this pipeline has no stage to produce first.
GENERATOR_KINDS = ("voxel-flow", "shower-vae", "shower-inn", "bayesian-shower-inn")


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


#: What the pipeline wires into each stage's workflow Config itself (placeholders until it runs the stage).
PENDING = "<set by the pipeline>"
GENERATE_WIRING = {"model": PENDING, "layer_model": None, "out": PENDING, "tracking_uri": None,
                   "experiment": PENDING, "geometry": None, "reference": None}
VALIDATE_WIRING = {"reference": [], "candidate": [], "geometry": PENDING, "out": PENDING, "experiment": PENDING,
                   "tracking_uri": None}
CALIBRATE_WIRING = {"model": PENDING, "inputs": [PENDING], "out_dir": PENDING, "tracking_uri": None}
SUPERRES_WIRING = {"model": PENDING, "inputs": [PENDING], "out": PENDING, "geometry": PENDING, "tracking_uri": None}


@dataclass
class PipelineConfig:
    """One end-to-end run into `out`. `tracking_uri` None → MLFLOW_TRACKING_URI, else a local store in `out`;
    `gpu`: every training with one GPU per Ray Train worker. `layer_energies`: which model samples the generated
    showers' layer energies, the generator itself or the pipeline's Flow-I with the generator only spreading each
    layer's energy over its voxels (the CaloFlow split; a voxel-flow generator always takes them from Flow-I).
    The stages are the workflows' own Configs; the pipeline sets their models, inputs, outputs and tracking
    (`*_WIRING`), so those keys are not set here."""

    data: PipelineData
    train: PipelineModels
    out: str = "outputs/pipeline"
    experiment: str = "caloray-pipeline"
    tracking_uri: str | None = None
    gpu: bool = False
    layer_energies: Literal["generator", "flow1"] = "generator"
    generate: GenerationConfig = field(**wired(GenerationConfig, GENERATE_WIRING, n_showers=1_000, shard_size=500,
                                       batch_size=500, validate_n=500))
    validate: ValidationConfig = field(**wired(ValidationConfig, VALIDATE_WIRING, features=["total-energy",
                                                "layer-energies"], statistics=["mean-ks", "swd"], batch_sizes=[200],
                                                n_iter=100, n_slices=50))
    calibrate: CalibrateConfig = field(**wired(CalibrateConfig, CALIBRATE_WIRING))
    superres: SuperresConfig = field(**wired(SuperresConfig, SUPERRES_WIRING))

    def __post_init__(self) -> None:
        models = {"flow1": self.train.flow1, "generator": self.train.generator, "superres": self.train.superres}
        kinds = {"flow1": ("layer-energy-flow",), "generator": GENERATOR_KINDS, "superres": ("superres-flow",)}
        for name, train in ((n, t) for n, t in models.items() if t is not None):
            if not train.tracking.registry_name:
                raise ConfigError(f"train.{name}.tracking.registry_name: set it (later stages load the registered "
                                  "ensemble)")
            if train.model.kind not in kinds[name]:
                raise ConfigError(f"train.{name}.model.kind must be one of: {', '.join(kinds[name])}; got "
                                  f"{train.model.kind!r}")
        if (self.data.superres is None) != (self.train.superres is None):
            raise ConfigError("data.superres and train.superres go together: set both or neither")
        geometries = {self.data.train.geometry, self.data.reference.geometry, self.data.calibration.geometry}
        if len(geometries) != 1:
            raise ConfigError(f"data.train, data.reference and data.calibration must share one geometry, got "
                              f"{sorted(geometries)}")


#: The workflow's one Config.
Config = PipelineConfig


#: Written next to a finished training: its registry reference, metrics and config, for `--resume`.
REGISTERED_FILE = "registered.json"


def run_pipeline(config: PipelineConfig, out: Path, *, resume: bool = False) -> dict[str, Any]:
    """Run every stage into `out`; returns the summary written to OUT/pipeline.json. Ray must be connected."""
    out.mkdir(parents=True, exist_ok=True)
    # The `pipeline` run (params: the whole config) in the one store every stage uses: `config.tracking_uri`, else
    # MLFLOW_TRACKING_URI, else a local SQLite store in `out` with its artifacts under `out/mlartifacts`.
    tracker = Run.start(config.experiment, "pipeline", out, tracking_uri=config.tracking_uri, params=to_dict(config),
                        tags={"caloray.role": "pipeline", "caloray.ray_job_id": str(ray_job_id())},
                        system_metrics=True)
    uri = tracker.tracking_uri
    metrics: dict[str, float] = {}  # the finite metrics logged, for the summary

    def log_metrics(values: dict[str, float]) -> None:
        metrics.update(tracker.log_metrics(values, per_energy=True))

    summary: dict[str, Any] = {"out": str(out), "tracking_uri": redact_uri(uri), "experiment": config.experiment,
                               "pipeline_run_id": tracker.run_id, "stages": {}, "registered": {}}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        print(f"\n== {name}", flush=True)
        began = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - began
        summary["stages"][name] = round(seconds, 2)
        log_metrics({f"seconds.{name}": seconds})
        print(f"   {name}: {seconds:.1f} s", flush=True)
        return value

    # Ends FAILED (KILLED on Ctrl-C) with the error as a tag when a stage raises; every run a stage starts
    # (training, generation, validation) is a child of this one.
    with tracker, tracker.nest():
        samples = stage("simulate", lambda: stage_simulate(config, out))
        log_metrics(stage("ingest", lambda: stage_ingest(config, samples["train"], out)))
        registered: dict[str, str] = summary["registered"]
        models = {"flow1": config.train.flow1, "generator": config.train.generator, "superres": config.train.superres}
        for name, train in models.items():
            if train is None:
                continue
            data = samples["superres" if name == "superres" else "train"]
            ref, trained = stage(f"train-{name}", lambda n=name, t=train, d=data: stage_train(
                n, t, d, out, uri, config.experiment, resume=resume, gpu=config.gpu))
            registered[name] = ref
            tracker.set_tags({f"caloray.registered.{name}": ref})
            log_metrics(trained)  # (not `metrics`: that name is the summary's dict that `log_metrics` fills)
        generated, info = stage("generate", lambda: stage_generate(config, registered["generator"],
                                                                   registered["flow1"], out, uri))
        log_metrics(info.pop("metrics"))
        summary["generate"] = {"shards": [str(p) for p in generated], **info}
        log_metrics(stage("validate", lambda: stage_validate(config, generated, out, uri)))
        log_metrics(stage("calibrate", lambda: stage_calibrate(config, registered["flow1"],
                                                               samples["calibration"], out, uri)))
        if "superres" in registered:
            log_metrics(stage("superres", lambda: stage_superres(config, registered["superres"],
                                                                 samples["superres"], out, uri)))
        summary["metrics"] = metrics
        summary["ui_command"] = ui_command(uri, out)
        text = summary_text(summary, out)
        (out / "summary.txt").write_text(text + "\n")
        (out / "pipeline.json").write_text(json.dumps(summary, indent=1, default=str))
        tracker.log_artifacts([out / "pipeline.json", out / "summary.txt"])
        tracker.log_artifacts([out / "features" / name for name in ("summary.txt", "layer_energies.png",
                                                                   "layer_energies.root", "response.png")], "ingest")
        tracker.log_artifacts([out / "validation" / "summary.txt"], "validate")
        tracker.log_artifacts([out / "calibrated" / "summary.txt"], "calibrate")
    return summary


def summary_text(summary: dict[str, Any], out: Path) -> str:
    """The closing summary: stage timings, registered models and the headline result of each stage (the full
    tables are in OUT/*/summary.txt)."""
    metrics = summary.get("metrics", {})
    lines = [f"caloray pipeline in {out} (experiment {summary['experiment']!r}, run {summary['pipeline_run_id']})",
             "stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in summary["stages"].items())]
    lines += [f"registered {name}: {ref}" for name, ref in summary["registered"].items()]
    generated = summary.get("generate", {})
    if generated:
        verdict = {True: "passed", False: "FAILED", None: "not run"}[generated.get("validation_passed")]
        if generated.get("generator"):
            lines.append(f"generator: {generated['generator']} ({' + '.join(generated['models'])})")
        lines.append(f"generated {metrics.get('generate.n_showers', 0):.0f} showers in "
                     f"{len(generated.get('shards', []))} shard(s); automatic validation {verdict}")
        lines += generated.get("validation_lines", [])
    if "validate.n_tests" in metrics:
        lines.append(f"two-sample tests vs the reference: {metrics['validate.n_tests']:.0f} tests, smallest p-value "
                     f"{metrics.get('validate.min_p_value', float('nan')):.3g} (validation/summary.txt)")
    modes = {k.split(".")[1]: v for k, v in metrics.items() if k.startswith("calibrate.") and k.endswith(".mode")}
    if modes:
        lines.append("calibration E_pred/E_true mode: " + ", ".join(f"{k} {v:.3f}" for k, v in modes.items())
                     + " (calibrated/summary.txt)")
    if "superres.energy_kept" in metrics:
        lines.append(f"super-resolution: {metrics['superres.n_showers']:.0f} showers upsampled, energy kept "
                     f"{metrics['superres.energy_kept']:.4f}")
    if summary.get("tracking_uri"):  # the registry the other commands (generate, calibrate, …) must look in
        uri = shlex.quote(summary["tracking_uri"])
        lines.append(f"use the registered models in other commands: export MLFLOW_TRACKING_URI={uri}")
    lines.append(f"MLflow UI: {summary['ui_command']}")
    return "\n".join(lines)


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
    from caloray.plots.summary import plot_layer_energies, plot_response
    from caloray.tables import format_table
    from caloray.workflows import features

    geometry = get_geometry(config.data.train.geometry)
    files = features.run(features.Config(inputs=[str(p) for p in shards], geometry=geometry.name,
                                         out=str(out / "features"))).paths["features"]
    columns = features.read_feature_table(files)
    table = format_table(response_table(columns["incident_energy_mev"], columns["response"]),
                         title=f"E_dep/E_inc of the training sample ({geometry.name})")
    print(table, flush=True)
    (out / "features" / "summary.txt").write_text(table + "\n")
    plot_layer_energies(columns["layer_energies_mev"], out / "features" / "layer_energies.png",
                        title=f"{geometry.name} layer energies (training sample)")
    plot_response(columns["incident_energy_mev"], columns["response"], out / "features" / "response.png",
                  title=f"{geometry.name} E_dep/E_inc (training sample)")
    response = np.asarray(columns["response"], dtype=np.float64)
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
    trained = workflow.run(train, resume=resume and (out / "train" / name).exists())
    if trained.detail.registered is None:
        raise ConfigError(f"train.{name}: the ensemble was not registered")
    ref = "{}:{}".format(*trained.detail.registered)
    print(f"{name}: {len(trained.detail.members)} × {train.model.kind}, val_loss "
          f"{trained.metrics['final_val_loss_mean']:.4f}, registered {ref}", flush=True)
    metrics = {f"train.{name}.{k}": v for k, v in trained.metrics.items()}  # the version is a tag, not a metric
    write_json_atomic(marker, {"ref": ref, "metrics": metrics, "config": identity})
    return ref, metrics


def _run_stage(name: str, section: Any, options: dict[str, Any] | None = None,
               **wiring: Any) -> tuple[Result, dict[str, float]]:
    """Workflow `name` on the pipeline's `section` (that workflow's Config) with what the pipeline wires in; prints
    its summary and returns its result and its metrics as `name.KEY`."""
    result = workflow(name).run(dataclasses.replace(section, **wiring), **(options or {}))
    print(f"{name}: {result.summary}", flush=True)
    return result, {f"{name}.{k}": v for k, v in result.metrics.items()}


def stage_generate(config: PipelineConfig, generator: str, flow1: str, out: Path, uri: str) -> tuple[list[Path], dict]:
    """Generate from the registered generator (chained to Flow-I when it is a Flow-II or `config.layer_energies`
    is "flow1"), validated against the reference sample; the info names the generator and its tests' p-values."""
    from caloray.generate.models import CHAIN_KINDS

    kind = config.train.generator.model.kind
    chained = kind in CHAIN_KINDS or config.layer_energies == "flow1"
    layer_model = flow1 if chained else None
    result, metrics = _run_stage("generate", config.generate, {"progress": False}, model=generator,
                                 layer_model=layer_model, out=str(out / "generated"), tracking_uri=uri,
                                 experiment=config.experiment, geometry=config.data.train.geometry,
                                 reference=[str(out / "sim" / "reference")])
    validation = getattr(result.detail, "validation", None)
    return result.paths["shards"], {"metrics": metrics, "run_id": result.detail.mlflow_run_id,
                                    "validation_passed": result.passed,
                                    "validation_lines": validation.summary_lines() if validation else [],
                                    "generator": f"layer-energy-flow → {kind}" if chained else kind,
                                    "models": [generator, flow1] if chained else [generator]}


def stage_validate(config: PipelineConfig, candidate: list[Path], out: Path, uri: str) -> dict[str, float]:
    return _run_stage("validate", config.validate, reference=[str(out / "sim" / "reference")],
                      candidate=[str(p) for p in candidate], geometry=config.data.train.geometry,
                      out=str(out / "validation"), experiment=config.experiment, tracking_uri=uri)[1]


def stage_calibrate(config: PipelineConfig, flow1: str, inputs: list[Path], out: Path, uri: str) -> dict[str, float]:
    """Calibrate the calibration sample with the registered Flow-I (its training range); the bias table goes to
    OUT/calibrated/summary.txt and the metrics."""
    return _run_stage("calibrate", config.calibrate, model=flow1, inputs=tuple(str(p) for p in inputs),
                      out_dir=str(out / "calibrated"), tracking_uri=uri)[1]


def stage_superres(config: PipelineConfig, model: str, inputs: list[Path], out: Path, uri: str) -> dict[str, float]:
    """Upsample with the registered SuperResolutionFlow; checks that every shower keeps its energy."""
    assert config.data.superres is not None
    return _run_stage("superres", config.superres, model=model, inputs=[str(p) for p in inputs],
                      out=str(out / "superres"), geometry=config.data.superres.geometry, tracking_uri=uri)[1]


def run(config: Config, *, stage: str = "pipeline") -> Result:
    """Run every stage into `config.out`. A folder that holds an earlier run is continued, not overwritten:
    finished samples, trainings, generated and calibrated shards are reused. `stage` names the run in
    OUT/provenance.json."""
    out = Path(config.out).resolve()
    resume = (out / "sim").exists()
    if resume:
        print(f"continuing the run in {out} (finished stages are reused; delete the folder for a fresh run)")
    summary = run_pipeline(config, out, resume=resume)
    write_provenance(out / "provenance.json", config, stage=stage, registered=summary["registered"],
                     pipeline_run_id=summary["pipeline_run_id"], stages=summary["stages"])
    return Result(out=out, metrics=summary.get("metrics", {}), paths={"summary": [out / "pipeline.json"]},
                  summary="== summary\n" + summary_text(summary, out), detail=summary)
