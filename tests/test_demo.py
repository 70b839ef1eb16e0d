"""`caloray demo`: the embedded pipeline config and the closing summary (the run itself: tests/deploy)."""

from __future__ import annotations

from pathlib import Path

from caloray.cli import build_parser
from caloray.generate.validation import ValidationOutcome
from caloray.workflows import WORKFLOWS, build_config
from caloray.workflows.pipeline import summary_text


def test_embedded_demo_config_is_a_complete_laptop_sized_pipeline() -> None:
    config = build_config("demo")
    assert WORKFLOWS["demo"].default_config.is_file() and config.experiment == "caloray-demo"
    assert config.data.superres is not None and config.train.superres is not None, "the demo super-resolves"
    assert config.data.train.n_showers <= 20_000 and config.generate.n_showers <= 5_000
    assert config.data.reference.seed != config.data.train.seed, "the reference sample must be held out"
    assert config.data.calibration.prior == "fixed" and len(config.data.calibration.energies_mev) >= 3
    names = {t.tracking.registry_name for t in (config.train.flow1, config.train.generator, config.train.superres)}
    assert len(names) == 3


def test_demo_cli_takes_out_config_and_gpu() -> None:
    args = build_parser().parse_args(["demo", "--out", "somewhere", "--config", "x.yaml", "--gpu"])
    assert (args.out, args.config, args.gpu) == ("somewhere", "x.yaml", True)
    assert build_parser().parse_args(["demo"]).config is None


def test_summary_names_every_stage_result_and_the_ui_command() -> None:
    summary = {
        "experiment": "caloray-demo", "pipeline_run_id": "abc", "stages": {"simulate": 5.2, "train-flow1": 100.4},
        "registered": {"flow1": "demo-flow1:3"},
        "generate": {"shards": ["a", "b"], "validation_passed": False, "generator": "layer-energy-flow → shower-vae",
                     "models": ["demo-gen:2", "demo-flow1:3"], "validation_lines": ValidationOutcome(
                         False, 0.01, 0.0025, [
                             {"feature": "total-energy", "statistic": "swd", "p_value": 0.0412, "p_floor": False},
                             {"feature": "layer-energies", "statistic": "mean-ks", "p_value": 0.002, "p_floor": True},
                             {"feature": "layer-energies", "statistic": "classifier", "auc": 0.8123}],
                         [], 2000, 1000, Path("/x")).summary_lines()},
        "metrics": {"generate.n_showers": 2000.0, "validate.n_tests": 4.0, "validate.min_p_value": 0.0123,
                    "calibrate.10GeV.mode": 0.9934, "calibrate.50GeV.mode": 1.0121, "superres.n_showers": 300.0,
                    "superres.energy_kept": 0.99996},
        "ui_command": "mlflow ui --backend-store-uri sqlite:////x/mlflow.db",
    }
    lines = summary_text(summary, Path("/x")).splitlines()
    assert lines[1] == "stage seconds: simulate 5, train-flow1 100"
    assert "registered flow1: demo-flow1:3" in lines
    assert "generator: layer-energy-flow → shower-vae (demo-gen:2 + demo-flow1:3)" in lines
    assert "generated 2000 showers in 2 shard(s); automatic validation FAILED" in lines
    assert ("  validation p-values (pass: every p ≥ 0.0025): total-energy swd 0.0412, layer-energies mean-ks < 0.002"
            in lines)
    assert "  classifier AUC: layer-energies 0.812" in lines
    assert any("4 tests, smallest p-value 0.0123" in line for line in lines)
    assert any("10GeV 0.993, 50GeV 1.012" in line for line in lines)
    assert "super-resolution: 300 showers upsampled, energy kept 1.0000" in lines
    assert lines[-1] == "MLflow UI: mlflow ui --backend-store-uri sqlite:////x/mlflow.db"
