"""The classifier metric (`caloray.stats.classifier`) per feature map, locally or as one Ray task per map.

Rows share the validation table with the two-sample tests: statistic "classifier", observed = test AUC, plus
auc, auc_err, jsd, jsd_err (bits) and, when `max_auc` is configured, the gate: passed = (auc ≤ max_auc).
A Ray task asks for one GPU when the cluster has one (and trains there); on the same device the Ray and
local paths return the same numbers for the same seed (both run `classifier_metric` with the same inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import torch

from caloray.stats.classifier import ClassifierConfig, ClassifierResult, classifier_metric
from caloray.validate.io import plot_calibration_curve
from caloray.validate.replicates import ArrayLike
from caloray.validate.table import _file_stem

CLASSIFIER = "classifier"
Backend = Literal["local", "ray"]


def default_device() -> str:
    """"cuda" where this process sees a GPU, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _classifier_task(reference: np.ndarray, candidate: np.ndarray,
                     config: ClassifierConfig) -> tuple[ClassifierResult, str]:
    """Body of the Ray task: train and score on the device the task was given."""
    device = default_device()
    return classifier_metric(reference, candidate, config, device), device


def classifier_results(features: Mapping[str, tuple[ArrayLike, ArrayLike]], config: ClassifierConfig,
                       backend: Backend = "local") -> dict[str, tuple[ClassifierResult, str]]:
    """name → (result, device) for every feature map; with backend "ray" all maps train concurrently, one task
    each (`config.threads` CPUs, plus one GPU when the cluster has any)."""
    if backend == "local":
        device = default_device()
        return {name: (classifier_metric(ref, cand, config, device), device)
                for name, (ref, cand) in features.items()}
    if backend != "ray":
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    import ray

    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(_classifier_task).options(num_cpus=config.threads, num_gpus=gpus)
    refs = {name: task.remote(np.asarray(ref), np.asarray(cand), config) for name, (ref, cand) in features.items()}
    return {name: ray.get(ref) for name, ref in refs.items()}


def run_classifier_grid(features: Mapping[str, tuple[ArrayLike, ArrayLike]], config: ClassifierConfig,
                        backend: Backend = "local", out_dir: str | Path | None = None,
                        max_auc: float | None = None) -> pa.Table:
    """One "classifier" row per feature map (columns: module docstring, plus d, n_reference, n_candidate,
    n_test, epochs_run, best_epoch, device, seed, plot_path); `out_dir` gets <feature>__classifier.png,
    the calibration curve."""
    rows: list[dict[str, Any]] = []
    for name, (result, device) in classifier_results(features, config, backend).items():
        reference, candidate = features[name]
        plot_path = ""
        if out_dir is not None:
            plot_path = str(plot_calibration_curve(result, Path(out_dir) / f"{_file_stem(name, CLASSIFIER)}.png",
                                                   f"{name}: classifier calibration"))
        rows.append({
            "feature": name,
            "statistic": CLASSIFIER,
            "d": int(np.asarray(reference).reshape(len(reference), -1).shape[1]),
            "n_reference": len(reference),
            "n_candidate": len(candidate),
            "seed": config.seed,
            "observed": result.auc,
            **result.summary(),
            "max_auc": max_auc,
            "passed": None if max_auc is None else bool(result.auc <= max_auc),
            "device": device,
            "plot_path": plot_path,
        })
    return pa.Table.from_pylist(rows)
