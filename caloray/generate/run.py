"""`generate(config)`: plan, resume, generate shards on Ray, write the manifest, validate, track in MLflow."""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from caloray.errors import ConfigError
from caloray.generate.config import GenerationConfig
from caloray.generate.energies import EnergySpec, parse_energy_spec
from caloray.generate.models import ModelSource, ShowerSampler, load_sampler, resolve_model_source
from caloray.generate.pipeline import ShardWriter, WorkerSpec, shard_unit
from caloray.generate.plan import Shard, plan_shards, shard_path
from caloray.generate.shards import ShardContext, ShardRecord
from caloray.generate.validation import (
    ValidationOutcome,
    ValidationSettings,
    resolve_geometry,
    resolve_reference,
    run_validation,
)
from caloray.geometry import Geometry
from caloray.io import expand_paths
from caloray.io.checks import check_shower_inputs
from caloray.pipelines import shards as runner
from caloray.provenance import write_json_atomic
from caloray.tracking.lineage import log_shower_inputs
from caloray.tracking.registry import mark_validated
from caloray.tracking.run import Run
from caloray.tracking.store import redact_uri

MANIFEST_FILE = "manifest.json"
FORMAT = "caloray-generation"
VERSION = 1
SEEDING = ("shard i: numpy SeedSequence(seed, spawn_key=(0, i)).spawn(2) → incident energies, torch seed; "
           "validation: SeedSequence(seed, spawn_key=(1,))")


@dataclass
class GenerationResult:
    """What `generate` produced. `n_generated` counts the showers written by this call (resumed runs skip the
    valid shards already there); `showers_per_s` is n_generated over the wall time of the shard phase."""

    out_dir: Path
    manifest_path: Path
    n_showers: int
    shards: list[Path]
    n_generated: int
    showers_per_s: float
    validation_passed: bool | None
    mlflow_run_id: str
    tracking_uri: str
    mlflow_status: str
    validation: ValidationOutcome | None = None


def resolve_energies(text: str | None, model: ModelSource, tracking_uri: str | None) -> EnergySpec:
    """The configured spec, else log-uniform over the model's registered training range (MeV)."""
    trained = None
    if model.registry:
        from caloray.tracking import registered_energy_range

        trained = registered_energy_range(model.name, model.version, tracking_uri=tracking_uri)
    if text:
        spec = parse_energy_spec(text)
        if trained is not None and (spec.range_mev[0] < trained[0] * (1 - 1e-9)
                                    or spec.range_mev[1] > trained[1] * (1 + 1e-9)):
            warnings.warn(f"energies {spec.text} reach outside the model's training range "
                          f"{trained[0]:g}–{trained[1]:g} MeV (extrapolation)", stacklevel=3)
        return spec
    if trained is None:
        raise ConfigError(f"model {model.ref!r} records no training energy range: pass energies "
                          "(--energies SPEC, e.g. log-uniform:1000-100000 in MeV)")
    return EnergySpec("log-uniform", low_mev=trained[0], high_mev=trained[1])


def generation_identity(config: GenerationConfig, model: ModelSource, layer_model: ModelSource | None,
                        energies: EnergySpec) -> dict[str, Any]:
    """The settings that decide every shard's values (the run fingerprint is their hash)."""
    return {"workflow": "generate", "model": model.identity(),
            "layer_model": None if layer_model is None else layer_model.identity(),
            "seed": config.seed, "n_showers": config.n_showers, "shard_size": config.shard_size,
            "energies": energies.text}


def _model_entry(source: ModelSource | None, sampler: ShowerSampler | None = None) -> dict[str, Any] | None:
    if source is None:
        return None
    entry = {"ref": source.ref, "name": source.name, "version": source.version, "sha256": source.sha256}
    if sampler is not None:
        entry["kind"] = sampler.description
    return entry


def _use_gpu(config: GenerationConfig) -> bool:
    gpus = ray.cluster_resources().get("GPU", 0)
    if config.use_gpu and not gpus:
        warnings.warn("use_gpu is set but the Ray cluster has no GPU now: the actors wait for GPU nodes "
                      "(an autoscaler must add them)", stacklevel=3)
    return bool(gpus) if config.use_gpu is None else config.use_gpu


def generate(config: GenerationConfig, *, progress: bool = True) -> GenerationResult:
    """Generate `config.n_showers` showers into `config.out` (resuming a previous run of the same config).

    Starts a local Ray when none is connected. Raises `ConfigError`/`GenerationError` for bad input, another
    generation in the output folder, or unsupported models; a failed validation is not an error: it is
    reported in the result, the manifest and the MLflow run status (FAILED).
    """
    out_dir = config.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with runner.folder_lock(out_dir):  # a second generation into this folder is refused at once
        return _locked(config, out_dir, progress)


def _locked(config: GenerationConfig, out_dir: Path, progress: bool) -> GenerationResult:
    from caloray.runtime import init_ray

    if not ray.is_initialized():
        init_ray()
    model = resolve_model_source(config.model, config.tracking_uri)
    layer_model = resolve_model_source(config.layer_model, config.tracking_uri) if config.layer_model else None
    sampler = load_sampler(model, layer_model, config.tracking_uri)  # unsupported models fail here, on the driver
    energies = resolve_energies(config.energies, model, config.tracking_uri)
    if config.validate_n > 0:
        reference = resolve_reference(config.reference, model, config.tracking_uri)
    else:
        reference = expand_paths(config.reference) if config.reference else []
    if reference:
        check_shower_inputs(reference, voxels=[sampler.n_voxels], expected_by="the generating model")
    geometry = resolve_geometry(config.geometry, reference, sampler.voxel_layer)
    if config.validate_n > 0 and geometry is None:
        raise ConfigError("the validation needs the geometry of the showers: set geometry (--geometry NAME or a "
                          "binning XML)")
    identity = generation_identity(config, model, layer_model, energies)
    runner.prepare_folder(out_dir, identity)  # refuses a folder of another generation
    settings = dataclasses.replace(config, energies=energies.text, tracking_uri=redact_uri(config.tracking_uri))
    shards = plan_shards(config.n_showers, config.shard_size)
    use_gpu = _use_gpu(config)
    tracker = Run.start(
        config.experiment, f"generate-{model.name}", out_dir, system_metrics=True,
        params={**dataclasses.asdict(settings), "use_gpu": use_gpu, "model_version": model.version,
                "resolved_geometry": None if geometry is None else geometry.name, "n_shards": len(shards)},
        tags={"caloray.role": "generation", "caloray.model": model.ref,
              "caloray.fingerprint": runner.fingerprint(identity)},
        tracking_uri=config.tracking_uri)
    try:
        return _generate(config, out_dir, model, layer_model, sampler, energies, geometry, reference, identity,
                         shards, use_gpu, tracker, progress)
    except BaseException as exc:
        tracker.fail(exc)
        raise


def _generate(config: GenerationConfig, out_dir: Path, model: ModelSource, layer_model: ModelSource | None,
              sampler: ShowerSampler, energies: EnergySpec, geometry: Geometry | None, reference: list[Path],
              identity: dict[str, Any], shards: list[Shard], use_gpu: bool, tracker: Run,
              progress: bool) -> GenerationResult:
    from caloray.provenance import provenance

    run_fingerprint = runner.fingerprint(identity)
    attrs = {"model": model.ref, "model_name": model.name, "model_kind": sampler.description}
    if model.version is not None:
        attrs["model_version"] = model.version
    if layer_model is not None:
        attrs["layer_model"] = layer_model.ref
    context = ShardContext(out_dir=str(out_dir), seed=config.seed, energies=energies, n_showers=config.n_showers,
                           n_shards=len(shards), shard_size=config.shard_size, batch_size=config.batch_size,
                           fingerprint=run_fingerprint, attrs=attrs,
                           geometry=None if geometry is None else geometry.name)
    spec = WorkerSpec(model, layer_model, config.tracking_uri, use_gpu, context)
    began = time.perf_counter()
    records = runner.execute_units(out_dir, identity, [shard_unit(s) for s in shards], ShardWriter(spec),
                                   actors=config.actors, use_gpu=use_gpu, max_restarts=config.max_restarts,
                                   progress=progress)
    seconds = time.perf_counter() - began
    done = {r.index: ShardRecord(r.index, r.file, r.rows, r.key["start"], r.sha256, r.stats["content_sha256"],
                                 r.seconds) for r in records}
    todo = [s for s in shards if done[s.index].seconds > 0]  # reused shards come back with 0 s
    n_generated = sum(done[s.index].rows for s in todo)
    rate = n_generated / seconds if n_generated else 0.0
    worker_seconds = sum(done[s.index].seconds for s in todo)

    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "generator": "caloray.generate",
        "identity": identity, "fingerprint": run_fingerprint,
        "model": _model_entry(model, sampler), "layer_model": _model_entry(layer_model),
        "geometry": None if geometry is None else geometry.name, "n_voxels": sampler.n_voxels,
        "config": {**dataclasses.asdict(config), "energies": energies.text,
                   "tracking_uri": redact_uri(config.tracking_uri)},
        "seed": config.seed, "seeding": SEEDING,
        "n_showers": config.n_showers, "n_shards": len(shards), "shard_size": config.shard_size,
        "total_rows": sum(done[s.index].rows for s in shards),
        "shards": [done[s.index].manifest_entry() for s in shards],
        "validation": None, "validation_passed": None,
        "mlflow_run_id": tracker.run_id, "provenance": provenance(),
    }
    manifest_path = write_json_atomic(out_dir / MANIFEST_FILE, manifest)

    outcome = None
    if config.validate_n > 0:
        assert geometry is not None
        settings = ValidationSettings(config.validate_n, list(config.validate_features),
                                      list(config.validate_statistics), config.validate_n_iter,
                                      config.validate_alpha, config.seed, config.validate_reference_rows,
                                      config.validate_classifier, config.validate_max_auc)
        outcome = run_validation(settings, spec, geometry, reference, out_dir / "validation", sampler)
        manifest["validation"], manifest["validation_passed"] = outcome.manifest_entry(), outcome.passed
        manifest_path = write_json_atomic(out_dir / MANIFEST_FILE, manifest)

    metrics = {"n_showers": float(config.n_showers), "n_shards": float(len(shards)),
               "n_generated": float(n_generated), "n_shards_generated": float(len(todo)),
               "n_shards_reused": float(len(shards) - len(todo)), "generation_seconds": seconds,
               "showers_per_s": rate,
               "showers_per_worker_s": n_generated / worker_seconds if worker_seconds else 0.0}
    if outcome is not None:
        metrics |= outcome.metrics()
    artifacts = [manifest_path, out_dir / runner.RUN_FILE, out_dir / runner.JOURNAL_FILE]
    artifacts += outcome.artifacts if outcome is not None else []
    passed = None if outcome is None else outcome.passed
    geometry_name = None if geometry is None else geometry.name
    if outcome is not None:
        log_shower_inputs(tracker.client, tracker.run_id, reference, context="reference", geometry=geometry_name)
    log_shower_inputs(tracker.client, tracker.run_id, [shard_path(out_dir, s.index) for s in shards],
                      context="generated", geometry=geometry_name, sha256s=[done[s.index].sha256 for s in shards])
    tracker.log_metrics(metrics)
    tracker.log_artifacts(artifacts)
    # The validation decides the run's status: FINISHED when it passes or is off, FAILED when it fails (a crash
    # ends it FAILED through `Run.fail` in `_locked`).
    tracker.set_tags({"caloray.validation": "off" if passed is None else "passed" if passed else "failed"})
    status = tracker.finish("FAILED" if passed is False else "FINISHED")
    if passed and config.validated_alias:
        for source in (model, layer_model):
            if source is not None and source.registry:
                mark_validated(source.name, source.version, config.validated_alias, run_id=tracker.run_id,
                               tracking_uri=config.tracking_uri)
    return GenerationResult(out_dir=out_dir, manifest_path=manifest_path, n_showers=config.n_showers,
                            shards=[shard_path(out_dir, s.index) for s in shards], n_generated=n_generated,
                            showers_per_s=rate, validation_passed=passed, mlflow_run_id=tracker.run_id,
                            tracking_uri=tracker.tracking_uri, mlflow_status=status, validation=outcome)
