"""The calibrate and score workflows: their metrics match what their shards hold, and an analytic AUC."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from caloray.geometry import get_geometry
from caloray.io import write_showers
from caloray.models import LayerEnergyFlow, save_model
from caloray.workflows import build_config, workflow


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """60 ECAL+HCAL-sized showers at two fixed energies and a small untrained Flow-I checkpoint."""
    folder = tmp_path_factory.mktemp("workflow-calib")
    geometry = get_geometry("ecal-hcal")
    rng = np.random.default_rng(1)
    energies = np.repeat([1e4, 3e4], 30)
    showers = rng.exponential(1.0, (60, geometry.n_voxels)) * energies[:, None] / geometry.n_voxels
    write_showers(folder / "in.h5", showers.astype(np.float32), energies, geometry="ecal-hcal")
    torch.manual_seed(0)
    model = save_model(LayerEnergyFlow(geometry.voxel_layer.tolist(), transforms=1, hidden_features=(8,)),
                       folder / "flow.pt")
    return folder, model


def test_calibrate_metrics_are_those_of_its_shards(ray_local, sample, tmp_path) -> None:
    folder, model = sample
    config = build_config("calibrate", None, {"model": str(model), "inputs": [str(folder)], "out_dir": str(tmp_path),
                                              "energy_min_mev": 1e3, "energy_max_mev": 1e5, "rows_per_unit": 30,
                                              "n_bootstrap": 5}, ["mle.n_scan=16"])
    result = workflow("calibrate").run(config)
    table = pa.concat_tables([pq.read_table(p) for p in result.paths["shards"]])
    ratio = table["e_pred_mev"].to_numpy() / table["incident_energy_mev"].to_numpy()
    assert result.metrics["n_showers"] == 60 == table.num_rows
    assert result.metrics["median_response"] == pytest.approx(float(np.nanmedian(ratio)))
    assert {"10GeV.mode", "30GeV.mode"} <= set(result.metrics)  # the bias table: one row per true energy
    assert "E_pred/E_true per true energy" in (tmp_path / "summary.txt").read_text()


def test_score_of_a_sample_against_itself_has_auc_one_half(ray_local, sample, tmp_path) -> None:
    """Signal = background: identical scores (same seed), so every threshold passes both equally: AUC = 1/2."""
    folder, model = sample
    config = workflow("score").Config(model=str(model), inputs=[str(folder)], signal=[str(folder)],
                                      out=str(tmp_path), energy_min_mev=1e3, energy_max_mev=1e5)
    result = workflow("score").run(config)
    assert result.metrics["n_background"] == result.metrics["n_signal"] == 60
    assert result.metrics["auc"] == pytest.approx(0.5)
