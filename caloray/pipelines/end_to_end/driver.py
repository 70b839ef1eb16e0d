"""The end-to-end run: every stage in order under one parent MLflow run, and its closing summary."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caloray.pipelines.end_to_end.config import PipelineConfig
from caloray.pipelines.end_to_end.record import start_pipeline_run
from caloray.pipelines.end_to_end.stages import (
    stage_calibrate,
    stage_generate,
    stage_ingest,
    stage_simulate,
    stage_superres,
    stage_train,
    stage_validate,
)
from caloray.tracking.store import redact_uri, ui_command
from caloray.validate.summary import format_p


def run_pipeline(config: PipelineConfig, out: Path, *, resume: bool = False) -> dict[str, Any]:
    """Run every stage into `out`; returns the summary written to OUT/pipeline.json. Ray must be connected."""
    out.mkdir(parents=True, exist_ok=True)
    tracker = start_pipeline_run(config, out)
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
            ref, metrics = stage(f"train-{name}", lambda n=name, t=train, d=data: stage_train(
                n, t, d, out, uri, config.experiment, resume=resume, gpu=config.gpu))
            registered[name] = ref
            tracker.set_tags({f"caloray.registered.{name}": ref})
            log_metrics(metrics)
        generated, info = stage("generate", lambda: stage_generate(config, registered["generator"],
                                                                   registered["flow1"], out, uri))
        summary["generate"] = {"run_id": info["run_id"], "validation_passed": info["validation_passed"],
                               "shards": [str(p) for p in generated],
                               **{k: info[k] for k in ("generator", "models", "tests", "threshold") if k in info}}
        log_metrics(info["metrics"])
        log_metrics(stage("validate", lambda: stage_validate(config, generated, out, uri)))
        log_metrics(stage("calibrate", lambda: stage_calibrate(config, registered["flow1"],
                                                               samples["calibration"], out, uri)))
        if "superres" in registered:
            log_metrics(stage("superres", lambda: stage_superres(config, registered["superres"],
                                                                 samples["superres"], out, uri)))
        summary["metrics"] = metrics
        summary["ui_command"] = _ui_hint(uri, out)
        text = summary_text(summary, out)
        (out / "summary.txt").write_text(text + "\n")
        (out / "pipeline.json").write_text(json.dumps(summary, indent=1, default=str))
        tracker.log_artifacts([out / "pipeline.json", out / "summary.txt"])
        tracker.log_artifacts([out / "features" / name for name in ("summary.txt", "layer_energies.png",
                                                                   "layer_energies.root", "response.png")], "ingest")
        tracker.log_artifacts([out / "validation" / "summary.txt"], "validate")
        tracker.log_artifacts([out / "calibrated" / "summary.txt"], "calibrate")
    return summary


def _ui_hint(uri: str, out: Path) -> str:
    """How to look at the runs: the `mlflow ui` command for a local store, the address of a tracking server."""
    if uri.startswith(("http://", "https://")):
        return f"open {redact_uri(uri)} in a browser (MLflow tracking server)"
    return ui_command(uri, out)


def _validation_lines(tests: list[dict[str, Any]], threshold: float | None) -> list[str]:
    """The automatic validation's figures: each calibrated test's p-value against the threshold, and the classifier
    AUC per feature map when it ran (generated/validation/summary.txt has the full table)."""
    p_values = [t for t in tests if t.get("p_value") is not None]
    lines = []
    if p_values:
        gate = "" if threshold is None else f" (pass: every p ≥ {threshold:.3g})"
        lines.append("  validation p-values" + gate + ": " + ", ".join(
            f"{t['feature']} {t['statistic']} {format_p(t['p_value'], bool(t.get('p_floor')))}" for t in p_values))
    aucs = [t for t in tests if t.get("auc") is not None]
    if aucs:
        lines.append("  classifier AUC: " + ", ".join(f"{t['feature']} {t['auc']:.3f}" for t in aucs))
    return lines


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
            lines.append(f"generator: {generated['generator']} ({' + '.join(generated.get('models', []))})")
        lines.append(f"generated {metrics.get('generate.n_showers', 0):.0f} showers in "
                     f"{len(generated.get('shards', []))} shard(s); automatic validation {verdict}")
        lines += _validation_lines(generated.get("tests") or [], generated.get("threshold"))
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
