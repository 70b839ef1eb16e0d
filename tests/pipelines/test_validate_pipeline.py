"""`caloray validate` on simulated files: same-distribution samples pass, a shifted sample is rejected."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from caloray.cli import main
from caloray.io import write_showers
from caloray.sim import SimConfig, simulate_to_files
from caloray.validate.report import summary_rows, verdict_line


@pytest.fixture(scope="module")
def samples(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    common = {"geometry": "ds1-photons", "prior": "log-uniform", "energy_min_mev": 10_000.0,
              "energy_max_mev": 20_000.0, "n_showers": 1500}
    paths = {}
    for name, seed, particle in (("reference", 1, "photon"), ("same", 2, "photon"), ("other", 3, "electron")):
        paths[name] = simulate_to_files(SimConfig(seed=seed, particle=particle, **common), root / f"sim-{name}",
                                        progress=False)
    return root, paths


def _validate(root, reference, candidate, out):
    args = ["validate", "--reference", *map(str, reference), "--candidate", *map(str, candidate),
            "--geometry", "ds1-photons", "--features", "layer-energies", "shower-shape", "--stats", "mean-ks", "swd",
            "--batch-size", "300", "--n-iter", "60", "--seed", "4", "--out", str(root / out)]
    assert main(args) == 0
    return pq.read_table(root / out / "results.parquet").to_pylist()


def test_same_distribution_is_accepted_and_other_particle_rejected(samples):
    root, paths = samples
    same = _validate(root, paths["reference"], paths["same"], "same")
    assert len(same) == 4 and {r["feature"] for r in same} == {"layer-energies", "shower-shape"}
    assert min(r["p_value"] for r in same) > 0.01
    other = _validate(root, paths["reference"], paths["other"], "other")
    # electrons start showering earlier than photons: the longitudinal shape gives them away
    shape = [r for r in other if r["feature"] == "shower-shape"]
    assert max(r["p_value"] for r in shape) < 0.05
    assert (root / "other" / "summary.txt").is_file() and list((root / "other" / "tests").rglob("*.png"))
    assert (root / "other" / "mlflow.db").is_file()


def test_printed_rows_mark_the_floor_and_the_verdict_is_bonferroni():
    floor = 1 / 201
    table = pa.Table.from_pylist([
        {"feature": "f", "statistic": "mean-ks", "d": 3, "batch_size": 100, "n_iter": 200, "observed": 2.0,
         "median_p": floor, "power_05": 1.0, "power_01": 1.0, "p_value": floor, "sigma": 2.576, "p_floor": True,
         "fgd_inf": None, "fgd_inf_error": None},
        {"feature": "f", "statistic": "fgd-inf", "d": 3, "batch_size": 100, "n_iter": 200, "observed": 0.01,
         "median_p": 0.6, "power_05": 0.05, "power_01": 0.01, "p_value": 0.3, "sigma": 0.524, "p_floor": False,
         "fgd_inf": 0.0123, "fgd_inf_error": 0.004},
    ])
    rows = summary_rows(table, threshold=0.05 / 2)
    assert (rows[0]["p_value"], rows[0]["sigma"], rows[0]["median_p"]) == ("< 0.00498", "> 2.58", "< 0.00498")
    assert (rows[1]["p_value"], rows[1]["sigma"], rows[1]["median_p"]) == ("0.3", "0.52", "0.6")
    assert [r["verdict"] for r in rows] == ["FAIL", "pass"]
    assert rows[1]["fgd_inf"] == "0.0123 ± 0.004" and rows[0]["fgd_inf"] == ""
    assert verdict_line(table, 0.05, 200).startswith("FAIL: 1 of 2 calibrated tests below 0.025 = 0.05/2")
    assert verdict_line(table.slice(1), 0.05, 200).startswith("PASS: 0 of 1")
    assert "cannot reach the threshold" in verdict_line(table, 0.05, 20)  # 1/21 > 0.025: could never fail


def test_classifier_metric_from_the_cli_gates_on_max_auc(samples, capsys):
    root, paths = samples

    def run(candidate, out):
        args = ["validate", "--reference", *map(str, paths["reference"]), "--candidate", *map(str, candidate),
                "--geometry", "ds1-photons", "--features", "voxels-normalized", "--stats", "classifier",
                "--max-auc", "0.6", "--seed", "4", "--out", str(root / out)]
        return main(args), pq.read_table(root / out / "results.parquet").to_pylist()

    status, (same,) = run(paths["same"], "classifier-same")
    assert status == 0 and same["statistic"] == "classifier" and same["d"] == 369 and same["passed"]
    assert abs(same["auc"] - 0.5) < 3 * same["auc_err"]
    status, (other,) = run(paths["other"], "classifier-other")
    assert status == 1 and other["auc"] > 0.6 and other["passed"] is False
    summary = (root / "classifier-other" / "summary.txt").read_text()
    assert "FAIL" in summary and "voxels-normalized: classifier AUC" in summary
    assert (root / "classifier-other" / "tests" / "classifier" / "voxels-normalized__classifier.png").is_file()


def test_bad_classifier_setting_names_file_and_key(samples, capsys):
    root, paths = samples
    config = root / "bad-classifier.yaml"
    config.write_text("classifier:\n  hidden: [16, 16]\n  dropout: 1.5\n")
    args = ["validate", "--config", str(config), "--reference", *map(str, paths["reference"]), "--candidate",
            *map(str, paths["same"]), "--geometry", "ds1-photons", "--stats", "classifier", "--out", str(root / "bad")]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and str(config) in error and "classifier.dropout must be in [0, 1), got 1.5" in error


@pytest.mark.parametrize("flag, name", [("--stats", "ks"), ("--features", "layer-energy")])
def test_unknown_statistic_or_feature_map_is_one_line_before_any_work(tmp_path, capsys, flag, name):
    sample = write_showers(tmp_path / "s.h5", np.ones((4, 368), np.float32), np.full(4, 1e4), geometry="ds1-photons")
    out = tmp_path / "out"
    args = ["validate", "--reference", str(sample), "--candidate", str(sample), "--geometry", "ds1-photons",
            flag, name, "--out", str(out)]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and repr(name) in error and "valid:" in error and not out.exists()
