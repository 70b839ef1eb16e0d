"""The calibration study: the shipped config loads; a tiny end-to-end run writes its table, plots and MLflow run."""

import csv
from pathlib import Path

import pytest

from caloray.calibrate import MLESettings
from caloray.config import load_yaml
from caloray.studies.calibration import CalibrationStudyConfig, MethodSettings, run_calibration_study

CONFIG = Path(__file__).resolve().parents[2] / "caloray" / "configs" / "calibration-study.yaml"


def test_shipped_config_loads():
    config = load_yaml(CalibrationStudyConfig, CONFIG)
    assert config.eval_energies_gev == [10.0 * k for k in range(1, 10)]
    assert config.flow.members >= 3 and config.mle.n_scan == 48


@pytest.mark.slow
@pytest.mark.timeout(1500)  # trains 4 ensembles on Ray: > 600 s on a loaded 2-core machine
def test_tiny_study_end_to_end(ray_local, tmp_path):
    config = CalibrationStudyConfig(
        out=str(tmp_path), n_train=3000, eval_energies_gev=[30.0, 60.0], n_eval=150, n_bootstrap=4,
        # Enough training that the flows' likelihood peaks inside the range: with 2 epochs every shower sat
        # at the upper edge and the per-shower columns were all NaN.
        flow=MethodSettings(members=2, epochs=8, milestones=[7], model_kwargs={"transforms": 2}),
        dnn=MethodSettings(members=2, epochs=4, milestones=[3]), mle=MLESettings(n_scan=24, rtol=1e-4))
    rows = run_calibration_study(config)
    assert len(rows) == 8
    assert {(r["method"], r["prior"]) for r in rows} == {(m, p) for m in ("flow", "dnn")
                                                         for p in ("uniform", "log-uniform")}
    flows = [r for r in rows if r["method"] == "flow"]
    assert all(r["mean_shower_resolution"] > 0 for r in flows)
    assert all(r["frac_at_edge"] < 0.5 for r in flows)
    with (tmp_path / "metrics.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 8
    for name in ("bias_vs_energy", "resolution_vs_energy", "asymmetry", "edep_vs_einc", "error_vs_shower_resolution"):
        assert (tmp_path / "plots" / f"{name}.png").is_file()
    assert (tmp_path / "mlflow.db").is_file()
