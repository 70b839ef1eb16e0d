"""Config loading and a tiny end-to-end amplification study on Ray."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from caloray.amplify import AmplificationConfig, FlowConfig, load_amplification_config, run_amplification
from caloray.amplify.study import run_repetition
from caloray.errors import ConfigError

DEFAULT = Path(__file__).resolve().parents[2] / "caloray" / "configs" / "amplification.yaml"


def _tiny(**kw) -> AmplificationConfig:
    base = dict(repetitions=2, n_train=50, n_quantiles=[5, 10], generated_sizes=[100, 1_000, 5_000],
                ensemble_members=2, models=["sample", "fit", "flow", "ensemble", "resample"],
                flow=FlowConfig(transforms=1, bins=6, hidden_features=[8], steps=20))
    return AmplificationConfig(**(base | kw))


def test_default_config_loads():
    config = load_amplification_config(DEFAULT)
    assert config.repetitions >= 10 and config.n_train == 100 and config.n_quantiles == [10, 20, 50]
    assert config.flow.bound >= 8 and "ensemble" in config.models


def test_config_rejects_unknown_keys_and_models(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("repetitons: 3\n")
    with pytest.raises(ConfigError, match="repetitions"):
        load_amplification_config(bad)
    bad.write_text("flow: {stepz: 3}\n")
    with pytest.raises(ConfigError, match="steps"):
        load_amplification_config(bad)
    with pytest.raises(ConfigError, match="unknown model"):
        AmplificationConfig(models=["gan"])


def test_repetition_is_deterministic():
    config = _tiny(models=["sample", "fit", "resample"])
    a, b = run_repetition(config, 1), run_repetition(config, 1)
    assert a.curves == b.curves and a.asymptotes == b.asymptotes
    assert run_repetition(config, 0).curves != a.curves


def test_tiny_study_on_ray_writes_table_and_plots(ray_local, tmp_path):
    config = _tiny()
    result = run_amplification(config, tmp_path)
    for key in ("curves", "repetitions", "summary", "table", "json", "config", "mse_plot", "amplification_plot",
                "provenance"):
        assert result.paths[key].is_file() and result.paths[key].stat().st_size > 0, key
    assert result.paths["mse_plot"].read_bytes()[:4] == b"\x89PNG"
    models = {row["model"] for row in result.summary}
    assert models == {"sample", "fit", "flow", "ensemble", "resample"}
    assert len(result.summary) == 5 * 2
    assert len(result.curves) == 2 * 5 * 3 * 2  # repetitions × (4 generators + truth) × sizes × N_q
    record = json.loads(result.paths["json"].read_text())
    assert record["summary"] == result.summary and len(record["repetition_seconds"]) == 2
    assert any("repetitions" in note for note in result.notes)
    assert result.factor("fit", 10) > 0
    # same config in process gives identical numbers: Ray tasks are deterministic per (seed, repetition)
    serial = run_amplification(dataclasses.replace(config, use_ray=False), tmp_path / "serial")
    assert serial.asymptotes == result.asymptotes


@pytest.mark.integration
def test_study_logs_to_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _tiny(repetitions=1, models=["sample", "fit"], use_ray=False, tracking_uri=uri, experiment="amp-test")
    result = run_amplification(config, tmp_path / "out")
    run = MlflowClient(tracking_uri=uri).get_run(result.mlflow_run_id)
    assert run.data.metrics["amplification_fit_q10"] == pytest.approx(result.factor("fit", 10))
    assert run.data.params["n_train"] == "50"
