"""The Ray Job entrypoints run end to end on tiny configs (local Ray from the `ray_local` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml
from deploy_testlib import JOBS, REPO, load_job_module

TINY_SIM = {"geometry": "ecal-hcal", "particle": "pion", "prior": "uniform", "energy_min_mev": 1000.0,
            "energy_max_mev": 20000.0, "n_showers": 200, "shard_size": 100, "seed": 7}


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _showers(folder: Path) -> int:
    total = 0
    for shard in sorted(folder.glob("showers-*.h5")):
        with h5py.File(shard) as f:
            total += f["showers"].shape[0]
    return total


def test_simulate_job_single_config(ray_local, tmp_path: Path) -> None:
    config = _write(tmp_path / "sim.yaml", TINY_SIM)
    out = tmp_path / "out"
    assert load_job_module("run").main(["simulate", "--config", str(config), "--out", str(out)]) == 0
    assert len(list(out.glob("showers-*.h5"))) == 2 and _showers(out) == 200
    record = json.loads((out / "job" / "provenance.json").read_text())
    assert record["stage"] == "simulate" and record["config"]["n_showers"] == 200
    assert record["job"]["ray_job_id"] and "versions" in record


def test_simulate_job_named_datasets(ray_local, tmp_path: Path) -> None:
    fixed = {**TINY_SIM, "prior": "fixed", "energies_mev": [10000.0, 20000.0], "n_showers": 50, "seed": 8}
    config = _write(tmp_path / "sim.yaml", {"datasets": [{"name": "train", "sim": TINY_SIM},
                                                         {"name": "eval", "sim": fixed}]})
    out = tmp_path / "out"
    assert load_job_module("run").main(["simulate", "--config", str(config), "--out", str(out)]) == 0
    assert _showers(out / "train") == 200 and _showers(out / "eval") == 50
    record = json.loads((out / "job" / "provenance.json").read_text())
    assert set(record["paths"]) == {"train", "eval"}


def test_scripts_start_as_scripts(tmp_path: Path) -> None:
    """`python jobs/run.py NAME` imports caloray (what `ray job submit` runs)."""
    env = {**os.environ, "RAY_ADDRESS": ""}
    for name in ("simulate", "demo", "calibrate", "validate", "superres", "generate", "pipeline"):
        done = subprocess.run([sys.executable, str(JOBS / "run.py"), name, "--help"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--config" in done.stdout, done.stderr


def test_production_rejects_unknown_training_set(tmp_path: Path, capsys) -> None:
    _write(tmp_path / "sim.yaml", {"datasets": [{"name": "train", "sim": TINY_SIM}]})
    prod = _write(tmp_path / "prod.yaml", {"simulate": "sim.yaml", "train": str(
        REPO / "jobs" / "configs" / "train-flow1-ecal-hcal.yaml"), "train_datasets": ["nope"]})
    code = load_job_module("run").main(["production", "--config", str(prod), "--out", str(tmp_path / "runs")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "sim.yaml" in error[0] and "'nope'" in error[0], error
    assert not (tmp_path / "runs").exists(), "nothing is written before the config is known to be good"


def test_run_folders_are_unique(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from caloray.errors import ConfigError
    from caloray.workflows import production

    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    folder = production.run_folder(tmp_path, now)
    assert folder.name == "20261123T020000Z"
    folder.mkdir()
    with pytest.raises(ConfigError):
        production.run_folder(tmp_path, now)


@pytest.mark.slow
def test_demo_job(ray_local, tmp_path: Path, monkeypatch) -> None:
    """jobs/run.py demo on the tiny pipeline config: every stage runs, the summary and both provenance records
    are written, and a second run into the same folder continues it instead of failing."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = JOBS / "configs" / "pipeline-demo.yaml"
    out = tmp_path / "demo"
    assert load_job_module("run").main(["demo", "--config", str(config), "--out", str(out)]) == 0
    summary = json.loads((out / "pipeline.json").read_text())
    assert list(summary["stages"]) == ["simulate", "ingest", "train-flow1", "train-generator", "train-superres",
                                       "generate", "validate", "calibrate", "superres"]
    assert (out / "summary.txt").read_text().splitlines()[-1].startswith("MLflow UI: mlflow ui --backend-store-uri")
    assert json.loads((out / "provenance.json").read_text())["stage"] == "demo"
    assert json.loads((out / "job" / "provenance.json").read_text())["stage"] == "demo"
    assert (out / "features" / "layer_energies.png").is_file() and (out / "calibrated" / "summary.txt").is_file()
    # every trained model is registered @candidate; the generator also @validated when its validation passed
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=summary["tracking_uri"], registry_uri=summary["tracking_uri"])
    for role, ref in summary["registered"].items():
        aliases = client.get_model_version(*ref.split(":")).aliases
        assert "candidate" in aliases, (ref, aliases)
        assert ("validated" in aliases) == (role == "generator" and summary["generate"]["validation_passed"])
    assert load_job_module("run").main(["demo", "--config", str(config), "--out", str(out)]) == 0
    again = json.loads((out / "pipeline.json").read_text())
    assert again["pipeline_run_id"] != summary["pipeline_run_id"]
    assert again["metrics"]["generate.n_showers"] == summary["metrics"]["generate.n_showers"]


@pytest.mark.slow
def test_production_job_simulates_then_trains(ray_local, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    train = yaml.safe_load((JOBS / "configs" / "train-flow1-ecal-hcal.yaml").read_text())
    train.update(epochs=1, checkpoint_every=1, batch_size=50, output_dir=str(tmp_path / "unused"))
    train["schedule"] = {"kind": "constant"}
    train["ensemble"] = {"members": 1, "num_workers": 1, "cpus_per_worker": 1, "use_gpu": False}
    train["model"]["kwargs"].update(transforms=1, hidden_features=[8])
    train["tracking"] = {"experiment": "deploy-test", "registry_name": None}
    _write(tmp_path / "train.yaml", train)
    _write(tmp_path / "sim.yaml", {"datasets": [{"name": "train", "sim": TINY_SIM}]})
    prod = _write(tmp_path / "prod.yaml",
                  {"simulate": "sim.yaml", "train": "train.yaml", "train_datasets": ["train"]})
    runs = tmp_path / "runs"
    assert load_job_module("run").main(["production", "--config", str(prod), "--out", str(runs)]) == 0
    (run,) = runs.iterdir()
    assert _showers(run / "sim" / "train") == 200
    record = json.loads((run / "train" / "job" / "provenance.json").read_text())
    assert record["stage"] == "train" and all(Path(m).is_file() for m in record["paths"]["models"])
    assert json.loads((run / "job" / "provenance.json").read_text())["stage"] == "production"
