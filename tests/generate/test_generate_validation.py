"""The generation's automatic validation with the classifier metric: AUC ± err in the summary and manifest entry,
and the max_auc gate (no Ray: `run_validation` on this process with the world's trained flow)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from caloray.errors import ConfigError
from caloray.generate import GenerationConfig
from caloray.generate.models import ShowerSampler
from caloray.generate.validation import ValidationOutcome, ValidationSettings, run_validation
from caloray.geometry import read_binning_xml
from caloray.io import read_shower_file, write_showers
from caloray.models import load_model
from caloray.stats.classifier import ClassifierConfig

FAST = ClassifierConfig(hidden=(16,), lr=1e-2, epochs=30, patience=5, n_bootstrap=20, batch_size=64)


def _validate(world, reference: Path, folder: Path, max_auc: float | None) -> ValidationOutcome:
    settings = ValidationSettings(n=300, features=["total-energy"], statistics=["mean-ks", "classifier"],
                                  n_iter=100, alpha=0.05, seed=3, classifier=FAST, max_auc=max_auc)
    spec = SimpleNamespace(use_gpu=False, context=SimpleNamespace(batch_size=400))
    sampler = ShowerSampler(load_model(world.model_path))
    return run_validation(settings, spec, read_binning_xml(world.geometry_xml), [reference], folder, sampler)


def test_classifier_gate_fails_a_shifted_reference_and_reports_auc(world, tmp_path: Path) -> None:
    train = read_shower_file(world.train_file)
    scaled = write_showers(tmp_path / "scaled.h5", train["showers"] * 10.0, train["incident_energies"])
    outcome = _validate(world, scaled, tmp_path / "val", max_auc=0.7)
    row = next(r for r in outcome.rows if r["statistic"] == "classifier")
    # reference energies × 10: log E_total spans two decades in each sample and they overlap over one, so the
    # Bayes-optimal AUC is ≈ 1 − ½·¼ = 0.875 (ties only when both rows fall in the shared decade)
    assert 0.75 < row["auc"] < 0.95 and row["passed"] is False and not outcome.passed
    assert 0.0 < row["auc_err"] < 0.1 and row["max_auc"] == 0.7
    summary = (tmp_path / "val" / "summary.txt").read_text()
    assert summary.startswith("generation validation: FAILED") and f"{row['auc']:.4f} ± {row['auc_err']:.4f}" in summary
    assert outcome.manifest_entry()["tests"][-1]["auc"] == row["auc"]
    assert outcome.metrics()["validation.total-energy.classifier.auc"] == row["auc"]


def test_classifier_gate_passes_the_training_data(world, tmp_path: Path) -> None:
    outcome = _validate(world, world.train_file, tmp_path / "val", max_auc=0.9)
    row = next(r for r in outcome.rows if r["statistic"] == "classifier")
    assert row["auc"] <= 0.9 and row["passed"] is True
    assert outcome.passed == all(r["passed"] for r in outcome.rows)
    ungated = _validate(world, world.train_file, tmp_path / "ungated", max_auc=None)
    assert next(r for r in ungated.rows if r["statistic"] == "classifier")["passed"] is None


def test_config_accepts_classifier_and_checks_max_auc(world) -> None:
    base = {"model": str(world.model_path), "validate_statistics": ["mean-ks", "classifier"]}
    config = GenerationConfig(**base, validate_max_auc=0.6, validate_n_iter=200)
    assert config.n_tests == 2  # the classifier is not a Bonferroni test
    with pytest.raises(ConfigError, match="validate_max_auc must be in"):
        GenerationConfig(**base, validate_max_auc=1.5)
    with pytest.raises(ConfigError, match="add 'classifier'"):
        GenerationConfig(model=str(world.model_path), validate_max_auc=0.6)
