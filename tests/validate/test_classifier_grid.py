"""The classifier metric in the validation workflow: Ray equals local, rows in the shared table, the gate, the plot."""

from pathlib import Path

import numpy as np
import pytest

from caloray.stats.classifier import ClassifierConfig, classifier_metric
from caloray.validate.classifier import run_classifier_grid
from caloray.validate.report import failed_gates, summary_rows, validate_arrays

CONFIG = ClassifierConfig(hidden=(32, 32), epochs=8, patience=3, n_bootstrap=50, seed=3)


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(11)
    same = (rng.normal(size=(3000, 4)), rng.normal(size=(3000, 4)))
    shifted = (rng.normal(size=(3000, 2)), rng.normal(0.0, 1.5, size=(3000, 2)))  # wider: AUC well above ½
    return {"same": same, "shifted": shifted}


def test_ray_task_gives_the_local_numbers(ray_local, features, tmp_path: Path):
    shifted = {"shifted": features["shifted"]}  # one map: one worker to start (most of this test's time)
    (local,) = run_classifier_grid(shifted, CONFIG, backend="local").to_pylist()
    (remote,) = run_classifier_grid(shifted, CONFIG, backend="ray", out_dir=tmp_path).to_pylist()
    for key in ("auc", "auc_err", "jsd", "jsd_err", "best_epoch", "n_test", "device"):
        assert local[key] == remote[key], key
    # and both are the pure function's numbers
    direct = classifier_metric(*features["shifted"], CONFIG)
    assert local["auc"] == direct.auc and local["jsd"] == direct.jsd
    assert Path(remote["plot_path"]).name == "shifted__classifier.png" and Path(remote["plot_path"]).is_file()


def test_rows_share_the_table_and_the_gate_fails_above_max_auc(features, tmp_path: Path):
    table = validate_arrays(features, ["mean-ks", "classifier"], [200], n_iter=20, seed=3, classifier=CONFIG,
                            max_auc=0.6, out_dir=tmp_path)
    rows = {(r["feature"], r["statistic"]): r for r in table.to_pylist()}
    assert set(rows) == {(f, s) for f in features for s in ("mean-ks", "classifier")}
    same, shifted = rows["same", "classifier"], rows["shifted", "classifier"]
    assert abs(same["auc"] - 0.5) < 3 * same["auc_err"] and same["passed"] is True
    assert shifted["auc"] > 0.6 and shifted["passed"] is False
    assert shifted["observed"] == shifted["auc"] and shifted["p_value"] is None
    assert rows["same", "mean-ks"]["auc"] is None and rows["same", "mean-ks"]["p_value"] is not None
    assert failed_gates(table) == [f"shifted: classifier AUC {shifted['auc']:.4f} ± {shifted['auc_err']:.4f} "
                                   "> max_auc 0.6"]
    printed = {(r["feature"], r["statistic"]): r for r in summary_rows(table)}
    assert printed["shifted", "classifier"]["gate"] == "FAIL" and printed["same", "classifier"]["gate"] == "PASS"
    assert printed["same", "mean-ks"]["gate"] == "-"
    assert (tmp_path / "classifier" / "shifted__classifier.png").is_file()


def test_without_max_auc_nothing_is_gated(features):
    table = validate_arrays({"shifted": features["shifted"]}, ["classifier"], [200], classifier=CONFIG)
    assert table.num_rows == 1 and table.to_pylist()[0]["passed"] is None and failed_gates(table) == []
