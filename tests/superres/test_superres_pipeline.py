"""The Ray upsampling pipeline on ds2 with a tiny untrained SuperResolutionFlow and a few showers."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from caloray.errors import CalorayError
from caloray.io import read_shower_file, write_showers
from caloray.models import save_model
from caloray.superres import THRESHOLD_MEV, SuperResolutionFlow, coarse_energies
from caloray.superres.pipeline import upsample_files


def _tiny(oracle: bool) -> SuperResolutionFlow:
    torch.manual_seed(0)
    return SuperResolutionFlow.for_geometry("ds2", "A", oracle=oracle, transforms=1, hidden_features=(8,))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list:
    """Two ds2 files of 6 and 5 sparse showers (MeV)."""
    root = tmp_path_factory.mktemp("superres-in")
    rng = np.random.default_rng(1)
    paths = []
    for i, n in enumerate((6, 5)):
        showers = rng.exponential(5.0, size=(n, 6480)) * (rng.random((n, 6480)) < 0.05)
        paths.append(write_showers(root / f"in-{i}.h5", showers.astype(np.float32),
                                   rng.uniform(1e3, 1e5, n).astype(np.float32), geometry="ds2"))
    return paths


def _read(paths) -> np.ndarray:
    return np.concatenate([read_shower_file(p)["showers"] for p in paths])


@pytest.mark.parametrize("oracle", [True, False])
def test_pipeline_shapes_conservation_determinism(ray_local, tmp_path, inputs, oracle):
    model_path = save_model(_tiny(oracle), tmp_path / "sr.pt")
    first = upsample_files(model_path, inputs, tmp_path / "a", batch_size=4, seed=3, actors=1)
    again = upsample_files(model_path, inputs, tmp_path / "b", batch_size=4, seed=3, actors=1)
    other = upsample_files(model_path, inputs, tmp_path / "c", batch_size=4, seed=4, actors=1)
    fine, reference = _read(first), _read(inputs)  # shards in name order reproduce the input order
    assert fine.shape == reference.shape == (11, 6480) and fine.dtype == np.float32
    np.testing.assert_array_equal(fine, _read(again))
    assert not np.array_equal(fine, _read(other))
    assert np.all((fine == 0) | (fine >= THRESHOLD_MEV))
    grid = _tiny(oracle).grid
    up = coarse_energies(torch.as_tensor(fine, dtype=torch.float64), grid).numpy()
    ref = coarse_energies(torch.as_tensor(reference, dtype=torch.float64), grid).numpy()
    assert np.all(up <= ref * (1 + 1e-5) + 1e-4)  # only the cut removes energy
    assert np.all(ref - up <= grid.group_size * THRESHOLD_MEV + 1e-3 * np.maximum(ref, 1.0))
    incident = np.concatenate([read_shower_file(p)["incident_energies"].reshape(-1) for p in first])
    expected = np.concatenate([read_shower_file(p)["incident_energies"].reshape(-1) for p in inputs])
    np.testing.assert_array_equal(incident, expected)  # every shower once, in input order
    with h5py.File(first[0]) as f:
        assert f.attrs["variant"] == ("oracle" if oracle else "strict")
        assert int(f.attrs["seed"]) == 3 and f.attrs["choice"] == "A"


def test_pipeline_coarse_input_and_variant_checks(ray_local, tmp_path, inputs):
    strict = save_model(_tiny(False), tmp_path / "strict.pt")
    oracle = save_model(_tiny(True), tmp_path / "oracle.pt")
    grid = _tiny(False).grid
    coarse = coarse_energies(torch.as_tensor(_read(inputs)[:4], dtype=torch.float64), grid).numpy()
    coarse_file = write_showers(tmp_path / "coarse.h5", coarse.astype(np.float32), np.full(4, 1e4, np.float32))
    out = _read(upsample_files(strict, [coarse_file], tmp_path / "up", batch_size=8, oracle=False))
    assert out.shape == (4, 6480)
    up = coarse_energies(torch.as_tensor(out, dtype=torch.float64), grid).numpy()
    assert np.all(np.abs(coarse - up) <= grid.group_size * THRESHOLD_MEV + 1e-3 * np.maximum(coarse, 1.0))
    with pytest.raises(CalorayError, match="strict variant"):
        upsample_files(oracle, inputs, tmp_path / "x", oracle=False)
    with pytest.raises(CalorayError, match="does not match"):
        upsample_files(strict, inputs, tmp_path / "y", choice="B")
