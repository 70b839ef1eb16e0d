"""Ray-parallel shard writing: file count, contents, attributes, determinism across runs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from caloray.io import inspect_shower_file, read_shower_file
from caloray.sim import SimConfig, run_shards, simulate_shard, simulate_to_files


def test_ray_run_writes_all_showers_in_shards(ray_local, tmp_path: Path) -> None:
    config = SimConfig.preset("ds1-photons", n_showers=250, shard_size=100, seed=3)
    paths = simulate_to_files(config, tmp_path / "a", progress=False)
    assert [p.name for p in paths] == ["showers-00000.h5", "showers-00001.h5", "showers-00002.h5"]
    geometry = config.geometry_obj
    total = 0
    for i, path in enumerate(paths):
        info = inspect_shower_file(path, geometry)
        data = read_shower_file(path, geometry)
        energies, showers = simulate_shard(config, i)
        np.testing.assert_array_equal(data["showers"], showers)
        np.testing.assert_array_equal(data["incident_energies"], energies)
        assert info.attrs["generator"] == "caloray.sim" and info.attrs["geometry"] == "ds1-photons"
        assert info.attrs["shard_index"] == i and info.attrs["seed"] == 3
        assert SimConfig.from_json(info.attrs["sim_config"]) == config
        assert json.loads(info.attrs["sim_config"])["physics"]["h_over_e"] == 0.6
        total += info.n_showers
    assert total == 250
    with h5py.File(paths[0]) as f:
        assert f["incident_energies"].shape == (100, 1) and f["showers"].dtype == np.float32


def test_ray_runs_are_byte_identical_and_resumable(ray_local, tmp_path: Path) -> None:
    config = SimConfig.preset("ecal-hcal", n_showers=120, shard_size=50, seed=9)
    first = simulate_to_files(config, tmp_path / "a", progress=False, actors=1)
    second = simulate_to_files(config, tmp_path / "b", progress=False)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    first[1].unlink()
    results = run_shards(config, tmp_path / "a", progress=False)
    assert [r.shard_index for r in results] == [0, 1, 2]
    assert results[1].seconds > 0 and results[0].seconds == 0  # only the missing shard was re-made
    assert first[1].read_bytes() == second[1].read_bytes()
