"""The superres workflow's energy check: per-unit sums recorded by the workers, summed on the driver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caloray.io import read_shower_file, write_showers
from caloray.models import save_model
from caloray.pipelines.shards import read_records
from caloray.superres import SuperResolutionFlow
from caloray.workflows import superres


def test_energy_kept_is_the_sum_of_the_unit_records(ray_local, tmp_path):
    torch.manual_seed(0)
    model = save_model(SuperResolutionFlow.for_geometry("ds2", "A", oracle=False, transforms=1, hidden_features=(8,)),
                       tmp_path / "sr.pt")
    rng = np.random.default_rng(5)
    inputs = []
    for i, n in enumerate((6, 5)):
        showers = (rng.exponential(5.0, (n, 6480)) * (rng.random((n, 6480)) < 0.05)).astype(np.float32)
        inputs.append(write_showers(tmp_path / f"in-{i}.h5", showers, rng.uniform(1e3, 1e5, n), geometry="ds2"))
    config = superres.Config(model=str(model), inputs=[str(p) for p in inputs], out=str(tmp_path / "out"),
                             batch_size=4, actors=1)
    result = superres.run(config)
    # direct computation: every input and every upsampled shower read back, summed in float64
    total_in = sum(np.sum(read_shower_file(p)["showers"], dtype=np.float64) for p in inputs)
    total_out = sum(np.sum(read_shower_file(p)["showers"], dtype=np.float64) for p in result.paths["shards"])
    assert result.metrics["n_showers"] == 11 and result.metrics["n_shards"] == 2
    assert result.metrics["energy_kept"] == pytest.approx(total_out / total_in, rel=1e-12)
    records = read_records(tmp_path / "out")
    assert sum(r.stats["energy_in_mev"] for r in records.values()) == pytest.approx(total_in, rel=1e-12)
    assert abs(result.metrics["energy_kept"] - 1.0) < 0.05  # coarse energies kept up to the cell threshold cut
    again = superres.run(config)  # resumed: every unit reused, its recorded sums with it
    assert again.metrics == result.metrics
