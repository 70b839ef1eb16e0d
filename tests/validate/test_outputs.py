"""Parquet and PNG outputs, and the feature × statistic table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from caloray.stats import numpy_api as api
from caloray.validate import (
    ExperimentDesign,
    plot_null_vs_alternative,
    read_replicates_parquet,
    run_test,
    run_test_grid,
    summarize,
    write_replicates_parquet,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_parquet_round_trip_and_no_temporary_left(tmp_path: Path) -> None:
    result = summarize(np.array([0.1, 0.2, 0.3]), np.array([0.25, 0.5, 0.75]), "swd")
    path = write_replicates_parquet(result, tmp_path / "sub" / "swd.parquet", {"feature": "layers"})
    null, alt, info = read_replicates_parquet(path)
    np.testing.assert_array_equal(null, result.null)
    np.testing.assert_array_equal(alt, result.alt)
    assert info["summary"]["median_p"] == result.median_p == 0.25  # (1 + 0) / (1 + 3)
    assert info["metadata"] == {"feature": "layers"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["swd.parquet"]


def test_histogram_png_is_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    result = summarize(rng.normal(size=500), rng.normal(1.0, 1.0, size=500), "mean-ks")
    path = plot_null_vs_alternative(result, tmp_path / "hist.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hist.png", "hist.root"]  # histograms beside the PNG


def log_p(y: torch.Tensor) -> torch.Tensor:
    return -0.5 * (y**2).sum(-1)


def log_q(y: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((y - 0.5) ** 2).sum(-1)


def test_grid_table_has_one_row_per_combination(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    features = {
        "voxels": (rng.normal(size=(2000, 5)), rng.normal(0.5, 1.0, size=(2000, 5))),
        "total energy": (rng.normal(size=2000), rng.normal(size=2000)),
    }
    design = ExperimentDesign(batch_size=100, n_iter=40, n_slices=8, seed=2)
    table = run_test_grid(
        features, ["mean-ks", "swd", "llr"], design, out_dir=tmp_path, densities={"voxels": (log_p, log_q)}
    )
    assert isinstance(table, pa.Table)
    rows = table.to_pylist()
    # llr only where densities are given
    assert [(r["feature"], r["statistic"]) for r in rows] == [
        ("voxels", "mean-ks"),
        ("voxels", "swd"),
        ("voxels", "llr"),
        ("total energy", "mean-ks"),
        ("total energy", "swd"),
    ]
    first = rows[0]
    direct = run_test(*features["voxels"], "mean-ks", design)
    assert first["p_value"] == direct.p_value and first["observed"] == direct.observed
    assert first["d"] == 5 and first["batch_size"] == 100 and first["mode"] == "bootstrap"
    assert rows[0]["p_value"] == 1 / 41 and rows[2]["power_05"] == 1.0  # 0.5σ shift in 5 dims: obvious
    assert Path(rows[3]["replicates_path"]).name == "total_energy__mean-ks.parquet"
    assert Path(rows[3]["plot_path"]).is_file()


def test_grid_reports_whole_sample_fgd_inf_with_its_uncertainty() -> None:
    rng = np.random.default_rng(3)
    reference, candidate = rng.normal(size=(600, 3)), rng.normal(0.2, 1.0, size=(500, 3))
    design = ExperimentDesign(batch_size=100, n_iter=20, n_slices=8, seed=7)
    rows = run_test_grid({"f": (reference, candidate)}, ["mean-ks", "fgd-inf"], design).to_pylist()
    value, error = api.fgd_inf_with_uncertainty(reference, candidate, seed=7)
    assert rows[1]["fgd_inf"] == pytest.approx(value[0], rel=1e-12) and rows[1]["fgd_inf_error"] == error[0] > 0
    assert rows[0]["fgd_inf"] is None  # only on the FGD∞ rows


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend"):
        run_test_grid({}, ["mean-ks"], ExperimentDesign(batch_size=10, n_iter=2), backend="dask")  # type: ignore[arg-type]
