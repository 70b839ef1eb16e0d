"""A registered ensemble: version pinned, default energies = its training range, default reference = its data."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from caloray.errors import ConfigError
from caloray.generate import GenerationConfig, generate
from caloray.generate.models import resolve_model_source
from caloray.models import Ensemble, load_model, save_model
from caloray.tracking import register_ensemble


def _register(client: MlflowClient, world, tmp_path, experiment_id: str) -> int:
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "data.incident_energy_min_mev", "2000.0")
    client.log_param(run_id, "data.incident_energy_max_mev", "50000.0")
    folder = tmp_path / f"ensemble-{run_id}"
    save_model(Ensemble.from_members([load_model(world.model_path)]), folder / "ensemble.pt")
    shutil.copy(world.model_path.parent / "train-config.yaml", folder / "train-config.yaml")
    client.log_artifacts(run_id, str(folder), artifact_path="ensemble")
    source = f"{client.get_run(run_id).info.artifact_uri}/ensemble"
    return register_ensemble(client, "layer-flows", source=source, run_id=run_id)


def test_registered_model_defaults_and_version_pinning(ray_local, world, tmp_path) -> None:
    uri = f"sqlite:///{tmp_path / 'registry.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment("train", artifact_location=(tmp_path / "artifacts").as_uri())
    assert _register(client, world, tmp_path, experiment_id) == 1
    config = GenerationConfig(model="layer-flows", tracking_uri=uri, n_showers=600, shard_size=300,
                              out=str(tmp_path / "out"), geometry=str(world.geometry_xml), validate_n=150,
                              validate_n_iter=200, validate_alpha=0.05, actors=1)
    result = generate(config, progress=False)
    manifest = json.loads(result.manifest_path.read_text())
    assert (manifest["model"]["name"], manifest["model"]["version"]) == ("layer-flows", 1)
    assert manifest["model"]["ref"] == "layer-flows:1"
    assert manifest["config"]["energies"] == "log-uniform:2000.0-50000.0"  # the registered training range
    for path in result.shards:
        with h5py.File(path) as f:
            energies = f["incident_energies"][:, 0]
            assert f.attrs["model_version"] == 1
        assert np.all((energies >= 1999.9) & (energies <= 50000.1))
    assert result.validation is not None and result.validation.reference_files == [str(world.train_file)]
    assert result.tracking_uri == uri  # tracked next to the registry
    assert client.get_run(result.mlflow_run_id).info.status == "FINISHED"
    # the passing validation aliased the version @validated; the run lists its reference and generated showers
    assert int(client.get_model_version_by_alias("layer-flows", "validated").version) == 1
    assert client.get_model_version("layer-flows", "1").tags["caloray.validation"].startswith("passed")
    contexts = {t.value for d in client.get_run(result.mlflow_run_id).inputs.dataset_inputs for t in d.tags
                if t.key == "mlflow.data.context"}
    assert contexts == {"reference", "generated"}

    assert _register(client, world, tmp_path, experiment_id) == 2  # "newest" now means another model
    assert resolve_model_source("layer-flows@validated", uri).ref == "layer-flows:1"
    with pytest.raises(ConfigError, match=r"layer-flows:1.*layer-flows:2"):
        generate(config, progress=False)
    pinned = GenerationConfig(**{**config.__dict__, "model": "layer-flows:1", "validate_n": 0})
    assert generate(pinned, progress=False).n_generated == 0  # same generation: nothing left to do
