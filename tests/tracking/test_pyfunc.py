"""Registered ensembles as MLflow pyfunc models: one per task, loaded back in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow.artifacts
import numpy as np
import pytest
import torch
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from caloray.calibrate.engine import calibrate_features, shower_features
from caloray.generate import ShowerSampler, generate_showers
from caloray.models import EnergyRegressor, Ensemble, LayerEnergyFlow, ShowerVAE, save_model
from caloray.tracking import load, local_tracking_uri
from caloray.tracking.pyfunc import log_pyfunc_model, pyfunc_task
from caloray.tracking.registry import CANDIDATE_ALIAS, RegistryError, register_ensemble

VOXEL_LAYER = [0, 0, 1, 1, 1, 2]
ENERGY_RANGE = (1e3, 1e5)


def _members(kind: type, seed: int, **kwargs) -> Ensemble:
    torch.manual_seed(seed)
    return Ensemble.from_members([kind(voxel_layer=VOXEL_LAYER, **kwargs) for _ in range(2)])


MODELS = {
    "gen": (_members, (ShowerVAE, 1), {"latent_dim": 3, "hidden_features": [8]}),
    "cal": (_members, (LayerEnergyFlow, 2), {"transforms": 1, "hidden_features": [8]}),
    "reg": (_members, (EnergyRegressor, 3), {"hidden_features": [8]}),
}


def _showers(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    energies = np.exp(rng.uniform(np.log(2e3), np.log(5e4), n))
    return rng.dirichlet(np.ones(len(VOXEL_LAYER)), n) * 0.7 * energies[:, None], energies


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> tuple[str, dict[str, Ensemble]]:
    """Three ensembles (one per pyfunc task) logged as models of one run and registered with @candidate."""
    out = tmp_path_factory.mktemp("pyfunc")
    uri = local_tracking_uri(out)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("pyfunc-test", artifact_location=(out / "mlartifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    showers, energies = _showers(3, seed=0)
    models = {}
    for name, (make, args, kwargs) in MODELS.items():
        ensemble = make(*args, **kwargs)
        folder = out / name
        save_model(ensemble, folder / "ensemble.pt")
        (folder / "manifest.json").write_text(json.dumps({"member_kind": ensemble.member_kind}))
        logged = log_pyfunc_model(uri, run_id, folder, ensemble, name=name, example_showers=showers,
                                  example_energies=energies, energy_range_mev=ENERGY_RANGE,
                                  pip_requirements=["caloray"])
        register_ensemble(client, name, source=logged.model_uri, model_id=logged.model_id, run_id=run_id,
                          aliases=(CANDIDATE_ALIAS,))
        models[name] = ensemble
    return uri, models


def test_tasks_by_capability(registry):
    _, models = registry
    assert {name: pyfunc_task(model) for name, model in models.items()} == {
        "gen": "generate", "cal": "calibrate", "reg": "regress"}


def test_pyfunc_in_fresh_process_reproduces_caloray_load(registry, tmp_path):
    """`mlflow.pyfunc.load_model("models:/NAME@candidate")` in a new interpreter equals caloray's own loader
    and sampler / calibrator / regressor bit for bit."""
    uri, _ = registry
    showers, energies = _showers(5, seed=1)
    np.save(tmp_path / "showers.npy", showers)
    np.save(tmp_path / "energies.npy", energies)
    script = (
        "import sys, numpy as np, pandas as pd, mlflow.pyfunc\n"
        "d = sys.argv[1]\n"
        "showers, energies = np.load(d + '/showers.npy'), np.load(d + '/energies.npy')\n"
        "gen = mlflow.pyfunc.load_model('models:/gen@candidate')\n"
        "np.save(d + '/gen.npy', gen.predict(pd.DataFrame({'incident_energy_mev': energies}), params={'seed': 7}))\n"
        "cal = mlflow.pyfunc.load_model('models:/cal@candidate').predict(showers)\n"
        "np.save(d + '/cal.npy', cal[['e_pred_mev', 'z_lo_mev', 'z_hi_mev']].to_numpy())\n"
        "reg = mlflow.pyfunc.load_model('models:/reg@candidate').predict(showers)\n"
        "np.save(d + '/reg.npy', reg['e_pred_mev'].to_numpy())\n"
    )
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": uri}
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=300, env=env)

    generator = load("gen@candidate", tracking_uri=uri)
    expected = generate_showers(ShowerSampler(generator), energies, 7, batch_size=len(energies))
    assert np.array_equal(np.load(tmp_path / "gen.npy"), expected)

    flow = load("cal@candidate", tracking_uri=uri).double()
    features = shower_features(flow, torch.as_tensor(showers))
    result = calibrate_features(flow, features, *ENERGY_RANGE)
    expected = np.stack([result.e_pred.numpy(), result.z_lo.numpy(), result.z_hi.numpy()], axis=1)
    assert np.array_equal(np.load(tmp_path / "cal.npy"), expected, equal_nan=True)
    assert np.isfinite(expected[:, 0]).all() and ((expected[:, 0] >= 1e3) & (expected[:, 0] <= 1e5)).all()

    regressor = load("reg@candidate", tracking_uri=uri).double()
    with torch.no_grad():
        expected = regressor.predict({"showers": torch.as_tensor(showers)}).numpy()
    assert np.array_equal(np.load(tmp_path / "reg.npy"), expected)


def test_signature_and_input_example_read_back(registry, tmp_path):
    uri, _ = registry
    mlflow.set_tracking_uri(uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts("models:/gen@candidate", dst_path=str(tmp_path / "gen")))
        info = Model.load(local)
        assert info.signature.inputs.input_names() == ["incident_energy_mev"]
        assert info.signature.outputs.inputs[0].shape == (-1, len(VOXEL_LAYER))
        assert info.signature.params.params[0].name == "seed"
        example = info.load_input_example(local)
        assert np.allclose(example["incident_energy_mev"].to_numpy(), _showers(3, seed=0)[1])

        local = Path(mlflow.artifacts.download_artifacts("models:/cal@candidate", dst_path=str(tmp_path / "cal")))
        info = Model.load(local)
        assert info.signature.inputs.inputs[0].shape == (-1, len(VOXEL_LAYER))
        assert info.signature.outputs.input_names() == ["e_pred_mev", "z_lo_mev", "z_hi_mev", "flags"]
        assert np.allclose(info.load_input_example(local)["showers"], _showers(3, seed=0)[0])
        # models from code: the stored model is caloray's source file and the weights, no pickle
        assert (local / "pyfunc_code.py").is_file() and (local / "artifacts" / "ensemble.pt").is_file()
        assert not list(local.rglob("*.pkl")) and not list(local.rglob("*.cloudpickle"))
    finally:
        mlflow.set_tracking_uri(None)


def test_alias_resolution(registry):
    uri, _ = registry
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.set_registered_model_alias("gen", "validated", "1")
    assert torch.equal(next(iter(load("gen@validated", tracking_uri=uri).state_dict().values())),
                       next(iter(load("gen:1", tracking_uri=uri).state_dict().values())))
    with pytest.raises(RegistryError, match=r"has no alias '@nope'; aliases: @candidate, @validated"):
        load("gen@nope", tracking_uri=uri)


def test_logging_survives_a_removed_working_directory(tmp_path, monkeypatch):
    """A Ray job's driver can lose its working directory (Ray removes the unpacked working_dir); MLflow's
    `Model.log` calls os.getcwd(), so logging runs in the model folder then, without uv detection."""
    import os

    from caloray.tracking.pyfunc import _logging_conditions

    gone, folder = tmp_path / "gone", tmp_path / "model"
    gone.mkdir()
    folder.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    monkeypatch.setenv("MLFLOW_UV_AUTO_DETECT", "true")
    with _logging_conditions(folder):
        assert os.getcwd() == str(folder) and os.environ["MLFLOW_UV_AUTO_DETECT"] == "false"
    assert os.environ["MLFLOW_UV_AUTO_DETECT"] == "true"
