"""`caloray validate` on simulated files: same-distribution samples pass, a shifted sample is rejected."""

import pyarrow.parquet as pq
import pytest

from caloray.cli import main
from caloray.sim import SimConfig, simulate_to_files


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
