"""`generate` end to end on Ray: shards, manifest, validation-gated MLflow status, resume, refusal, CLI."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from caloray.cli import main
from caloray.errors import ConfigError
from caloray.generate import GenerationConfig, generate
from caloray.generate.models import sha256_file
from caloray.geometry import read_binning_xml
from caloray.io import inspect_shower_file, read_shower_file, write_showers

N, SHARD = 2500, 1000


def _config(world, out, **overrides) -> GenerationConfig:
    values = {"model": str(world.model_path), "n_showers": N, "shard_size": SHARD, "out": str(out),
              "energies": "log-uniform:1GeV-100GeV", "geometry": str(world.geometry_xml), "validate_n": 300,
              "validate_n_iter": 200, "validate_alpha": 0.05, "actors": 1, "batch_size": 400}
    return GenerationConfig(**{**values, **overrides})


def _all_rows(out) -> np.ndarray:
    return np.concatenate([read_shower_file(p)["showers"] for p in sorted(out.glob("shard-*.h5"))])


@pytest.fixture(scope="module")
def first(ray_local, world, tmp_path_factory):
    return generate(_config(world, tmp_path_factory.mktemp("generate") / "out"), progress=False)


def test_generates_n_showers_in_calochallenge_shards_with_a_manifest(first, world) -> None:
    assert first.n_generated == N and [p.name for p in first.shards] == [f"shard-0000{i}.h5" for i in range(3)]
    manifest = json.loads(first.manifest_path.read_text())
    assert manifest["n_showers"] == manifest["total_rows"] == N and manifest["n_shards"] == 3
    assert [s["rows"] for s in manifest["shards"]] == [1000, 1000, 500]
    assert all(s["sha256"] == sha256_file(first.out_dir / s["file"]) for s in manifest["shards"])
    assert manifest["model"]["ref"] == str(world.model_path) and manifest["model"]["kind"] == "layer-energy-flow"
    assert manifest["config"]["energies"] == "log-uniform:1000.0-100000.0" and manifest["seed"] == 0
    geometry = read_binning_xml(world.geometry_xml)
    for path in first.shards:
        info = inspect_shower_file(path, geometry)
        assert info.showers_dtype == np.float32 and info.attrs["model"] == str(world.model_path)
        with h5py.File(path) as f:
            assert f["incident_energies"].shape == (info.n_showers, 1)
            energies = f["incident_energies"][:, 0]
        assert np.all((energies >= 999.9) & (energies <= 100_000.1))
    assert len(np.unique(_all_rows(first.out_dir), axis=0)) == N


def test_validation_against_the_training_data_passes_and_finishes_the_run(first, world) -> None:
    assert first.validation_passed is True and first.validation is not None
    assert first.validation.reference_files == [str(world.train_file)]  # found via the model's train-config.yaml
    assert first.validation.n_candidate == 300 and first.validation.n_reference == 600
    assert json.loads(first.manifest_path.read_text())["validation_passed"] is True
    run = MlflowClient(first.tracking_uri).get_run(first.mlflow_run_id)
    assert run.info.status == "FINISHED" == first.mlflow_status
    assert run.data.metrics["validation.passed"] == 1.0 and run.data.metrics["n_generated"] == N
    assert run.data.metrics["showers_per_s"] > 0
    assert run.data.params["n_showers"] == str(N) and run.data.tags["caloray.validation"] == "passed"
    artifacts = {a.path for a in MlflowClient(first.tracking_uri).list_artifacts(first.mlflow_run_id)}
    assert {"manifest.json", "summary.txt", "results.csv"} <= artifacts
    assert (first.out_dir / "validation" / "summary.txt").read_text().startswith("generation validation: PASSED")


def test_resume_regenerates_only_missing_corrupt_and_temporary_shards(first, world, tmp_path) -> None:
    out = tmp_path / "out"
    shutil.copytree(first.out_dir, out)
    before = json.loads((out / "manifest.json").read_text())["shards"]
    kept = (out / "shard-00000.h5").stat().st_mtime_ns
    (out / "shard-00001.h5").unlink()
    data = bytearray((out / "shard-00002.h5").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # corrupt the middle of the file
    (out / "shard-00002.h5").write_bytes(bytes(data))
    (out / ".shard-00000.h5.tmp999").write_bytes(b"partial")  # left behind by a killed writer
    again = generate(_config(world, out, validate_n=0), progress=False)
    assert again.n_generated == 1000 + 500 and again.validation_passed is None
    assert (out / "shard-00000.h5").stat().st_mtime_ns == kept
    assert not list(out.glob(".shard-*"))
    after = json.loads(again.manifest_path.read_text())["shards"]
    assert after == before  # regenerated shards are bit-identical (same seeds)
    assert all(s["sha256"] == sha256_file(out / s["file"]) for s in after)
    assert len(np.unique(_all_rows(out), axis=0)) == N
    assert MlflowClient(again.tracking_uri).get_run(again.mlflow_run_id).info.status == "FINISHED"


@pytest.mark.parametrize("change", [{"seed": 1}, {"n_showers": 3000}, {"shard_size": 500},
                                    {"energies": "uniform:1GeV-100GeV"}])
def test_another_configuration_in_the_same_folder_is_refused(first, world, change) -> None:
    listing = sorted(p.name for p in first.out_dir.iterdir())
    key = next(iter(change))
    with pytest.raises(ConfigError, match=f"another configuration.*{key}"):
        generate(_config(world, first.out_dir, **change, validate_n=0), progress=False)
    assert sorted(p.name for p in first.out_dir.iterdir()) == listing


def test_cli_wrong_reference_fails_validation_and_marks_the_run_failed(first, world, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    shutil.copytree(first.out_dir, out)
    train = read_shower_file(world.train_file)
    write_showers(tmp_path / "doubled.h5", train["showers"] * 2.0, train["incident_energies"])  # energies × 2
    code = main(["generate", "--model", str(world.model_path), "--n", str(N), "--shard-size", str(SHARD),
                 "--energies", "log-uniform:1000-100000", "--out", str(out), "--geometry", str(world.geometry_xml),
                 "--reference", str(tmp_path / "doubled.h5"), "--validate-n", "300", "--n-iter", "200",
                 "--alpha", "0.05", "--actors", "1", "--batch-size", "400"])
    text = capsys.readouterr().out
    assert code == 1 and "validation FAILED" in text and "generated 0 new showers" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["validation_passed"] is False and manifest["total_rows"] == N
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.info.status == "FAILED" and run.data.metrics["validation.passed"] == 0.0
    assert run.data.metrics["validation.total-energy.mean-ks.p_value"] < 0.05 / 4


def test_validation_without_any_reference_is_a_clear_error(ray_local, world, tmp_path) -> None:
    model = tmp_path / "alone" / "flow.pt"
    model.parent.mkdir()
    shutil.copy(world.model_path, model)  # no train-config.yaml next to it
    with pytest.raises(Exception, match="--reference FILES"):
        generate(_config(world, tmp_path / "out", model=str(model)), progress=False)
    with pytest.raises(Exception, match="--energies"):
        generate(_config(world, tmp_path / "out", model=str(model), energies=None, validate_n=0), progress=False)


def test_job_entrypoint_resumes_a_finished_generation(first, world, tmp_path) -> None:
    import importlib
    import sys
    from pathlib import Path

    jobs = Path(__file__).resolve().parents[2] / "jobs"
    if str(jobs) not in sys.path:
        sys.path.append(str(jobs))
    job = importlib.import_module("run")
    out = tmp_path / "out"
    shutil.copytree(first.out_dir, out)
    config = tmp_path / "generate-test.yaml"
    config.write_text(f"model: {world.model_path}\nn_showers: {N}\nshard_size: {SHARD}\n"
                      "energies: log-uniform:1GeV-100GeV\nvalidate_n: 0\nactors: 1\n")
    assert job.main(["generate", "--config", str(config), "--out", str(out)]) == 0
    provenance = json.loads((out / "job" / "provenance.json").read_text())
    assert provenance["stage"] == "generate" and provenance["passed"] is None
    assert provenance["config"]["n_showers"] == N
