"""The super-resolution study: config, pure helpers on hand-computed cases, and a tiny end-to-end run."""

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from caloray.cli import build_parser
from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.geometry import DS2_COARSE_CHOICES, get_geometry
from caloray.io import read_shower_file
from caloray.stats.classifier import classifier_metric
from caloray.studies.superres import (
    FlowTraining,
    SuperResStudyConfig,
    classifier_comparison,
    comparison_rows,
    conservation_metrics,
    layer_energy_spread,
    run_superres_study,
    study_features,
)
from caloray.superres import THRESHOLD_MEV

CONFIG = Path(__file__).resolve().parents[2] / "caloray" / "configs" / "superres-study.yaml"


def test_shipped_config_loads():
    config = load_yaml(SuperResStudyConfig, CONFIG)
    assert config.geometry == "ds2" and config.choice == "A"
    assert config.variants == ["strict", "oracle"]
    assert {"voxels", "coarse", "total-energy", "layer-energies", "centroids", "widths"} <= set(config.features)
    assert config.plot_layers == [1, 10, 20, 45]
    assert config.usable_batch_sizes() and max(config.usable_batch_sizes()) <= config.n_eval
    assert isinstance(config.flow, FlowTraining) and config.flow.epochs >= 1
    from caloray.superres import SuperResolutionFlow

    model = SuperResolutionFlow.for_geometry("ds2", "A", **config.flow.model_kwargs)  # the keys are the model's
    assert model.needs_preprocessing_fit == (model.marginals == "gaussianize" or model.standardize_conditions)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="variants"):
        SuperResStudyConfig(variants=["strict", "strict"])
    with pytest.raises(ConfigError, match="features"):
        SuperResStudyConfig(features=["voxel"])
    with pytest.raises(ConfigError, match="statistics"):
        SuperResStudyConfig(statistics=["llr"])
    with pytest.raises(ConfigError, match="classifier_features"):
        SuperResStudyConfig(classifier_features=["voxels_normalised"])
    assert SuperResStudyConfig(n_eval=300, batch_sizes=[1000, 100, 250]).usable_batch_sizes() == [100, 250]
    with pytest.raises(ConfigError, match="model_kwargs: fractions must be one of logit, stick"):
        SuperResStudyConfig(flow=FlowTraining(model_kwargs={"fractions": "softmax"}))
    with pytest.raises(ConfigError, match=r"model_kwargs: .*unexpected keyword argument 'marginal'"):
        SuperResStudyConfig(flow=FlowTraining(model_kwargs={"marginal": "gaussianize"}))


def test_cli_registers_superres_study():
    args = build_parser().parse_args(["superres-study", "cfg.yaml", "--out", "o"])
    # the positional CONFIG is the older spelling of --config FILE (`caloray.cli.main` merges the two)
    assert args.config_file == "cfg.yaml" and args.config is None and args.out == "o" and callable(args.handler)


def test_conservation_metrics_hand_computed():
    g, t = 10, THRESHOLD_MEV  # the cut may remove up to g·t = 0.15 MeV per coarse voxel
    coarse_in = np.array([[100.0, 0.10, 0.0, 50.0],
                          [10.0, 0.0, 2.0, 0.0]])
    coarse_up = np.array([[100.0, 0.0, 0.0, 49.95],   # 0.10 MeV cut away entirely; 0.05 MeV cut
                          [10.5, 0.0, 1.0, 0.3]])      # 0.5 MeV too much; 1.0 MeV missing; spurious 0.3
    m = conservation_metrics(coarse_in, coarse_up, g, t, rtol=1e-6)
    assert m["n_coarse_voxels"] == 5 and m["n_spurious"] == 1
    # beyond the cut: 0, 0, 0, 0.5/10 (excess), (1.0 − 0.15)/2 (deficit beyond g·t)
    assert m["frac_within_tol"] == pytest.approx(3 / 5)
    assert m["max_rel_dev_beyond_cut"] == pytest.approx(0.85 / 2.0)
    assert m["max_rel_dev"] == pytest.approx(1.0)  # the 0.10 MeV voxel lost all its energy to the cut
    assert m["max_deficit_mev"] == pytest.approx(1.0)
    frac = ((150.1 - 149.95) / 150.1 + (12.0 - 11.8) / 12.0) / 2
    assert m["cut_energy_fraction"] == pytest.approx(frac)


def test_layer_energy_spread_hand_computed():
    rng = np.random.default_rng(0)
    reference = np.stack([rng.normal(100.0, 10.0, 4000), rng.normal(50.0, 1.0, 4000), np.zeros(4000)], axis=1)
    same = np.stack([rng.normal(100.0, 10.0, 3000), rng.normal(50.0, 1.0, 3000), np.zeros(3000)], axis=1)
    spread = layer_energy_spread(reference, same)
    assert spread["layers_within_spread"] == 3 and spread["all_layers_within_spread"] == 1.0  # empty layer: ratio 1
    assert 0.99 < spread["layer_ratio_min"] <= spread["layer_ratio_max"] < 1.01
    moved = same * np.array([1.05, 1.1, 1.0])  # layer 0 by half its spread, layer 1 by 5 of its spreads
    spread = layer_energy_spread(reference, moved)
    assert spread["layers_within_spread"] == 2 and spread["all_layers_within_spread"] == 0.0
    assert spread["layer_ratio_max"] == pytest.approx(1.1, abs=0.01)


def test_comparison_rows_side_by_side():
    rows = [
        {"variant": "strict", "feature": "voxels", "d": 6480, "statistic": "sks", "batch_size": 100,
         "n_slices": 50, "p_value": 0.01, "sigma": 2.326},
        {"variant": "oracle", "feature": "voxels", "d": 6480, "statistic": "sks", "batch_size": 100,
         "n_slices": 50, "p_value": 0.5, "sigma": 0.0},
        {"variant": "oracle", "feature": "total-energy", "d": 1, "statistic": "mmd", "batch_size": 100,
         "n_slices": "-", "p_value": 0.2, "sigma": 0.84},
    ]
    table = comparison_rows(rows, ["strict", "oracle"])
    assert table == [
        {"feature": "voxels", "d": 6480, "statistic": "sks", "batch_size": 100, "n_slices": 50,
         "p[strict]": 0.01, "sigma[strict]": 2.326, "p[oracle]": 0.5, "sigma[oracle]": 0.0},
        {"feature": "total-energy", "d": 1, "statistic": "mmd", "batch_size": 100, "n_slices": "-",
         "p[strict]": "", "sigma[strict]": "", "p[oracle]": 0.2, "sigma[oracle]": 0.84},
    ]


def test_classifier_comparison_side_by_side():
    rows = [{"variant": "strict", "feature": "calochallenge", "d": 225, "auc": 0.71234, "auc_err": 0.01, "jsd": 0.1,
             "jsd_err": 0.02},
            {"variant": "oracle", "feature": "calochallenge", "d": 225, "auc": 0.55, "auc_err": 0.012, "jsd": 0.01,
             "jsd_err": 0.005}]
    assert classifier_comparison(rows, ["strict", "oracle"]) == [
        {"feature": "calochallenge", "d": 225, "auc[strict]": "0.7123 ± 0.0100", "jsd[strict]": "0.1000 ± 0.0200",
         "auc[oracle]": "0.5500 ± 0.0120", "jsd[oracle]": "0.0100 ± 0.0050"}]


def test_study_features_shapes():
    geometry = get_geometry("ds2")
    rng = np.random.default_rng(0)
    showers = (rng.exponential(1.0, (4, 6480)) * (rng.random((4, 6480)) < 0.2)).astype(np.float32)
    names = ["voxels", "coarse", "total-energy", "layer-energies", "centroids", "widths"]
    feats = study_features(showers, np.full(4, 1e4), geometry, names, "B")
    assert {k: v.shape[1] for k, v in feats.items()} == {"voxels": 6480, "coarse": 540, "total-energy": 1,
                                                         "layer-energies": 45, "centroids": 3, "widths": 3}
    assert feats["voxels"].dtype == np.float32
    np.testing.assert_allclose(feats["coarse"].sum(1), showers.astype(np.float64).sum(1), rtol=1e-9)
    assert np.all(feats["widths"] >= 0)


def _coarse_independently(showers: np.ndarray) -> np.ndarray:
    """Coarse-grain (choice A) with the geometry's own map, not the study's code path."""
    mapping = get_geometry("ds2").coarse_map(*DS2_COARSE_CHOICES["A"])
    out = np.zeros((len(showers), int(mapping.max()) + 1))
    for v in range(out.shape[1]):
        out[:, v] = showers[:, mapping == v].astype(np.float64).sum(axis=1)
    return out


@pytest.mark.slow
def test_tiny_study_end_to_end(ray_local, tmp_path):
    config = SuperResStudyConfig(
        out=str(tmp_path), n_train=240, n_eval=120, energy_min_gev=5.0, energy_max_gev=200.0, seed=3,
        # the shipped features: their preprocessing is fitted by the Ray trainer and reloaded by the upsampling actors
        flow=FlowTraining(epochs=2, batch_size=16, model_kwargs={
            "transforms": 1, "hidden_features": [16], "fractions": "stick", "marginals": "gaussianize", "bound": 5.0,
            "standardize_conditions": True}),
        statistics=["mean-ks", "sks", "mmd"], batch_sizes=[50, 100, 1000], n_iter=20, n_slices=20,
        upsample_batch_size=32)
    result = run_superres_study(config)

    # the table: both variants, every feature, the kernel statistic only on low-dimensional maps
    assert {r["variant"] for r in result.rows} == {"strict", "oracle"}
    assert {r["feature"] for r in result.rows} == set(config.features)
    assert {r["batch_size"] for r in result.rows} == {50, 100}
    assert {r["d"] for r in result.rows if r["statistic"] == "mmd"} <= {1, 3}
    assert all(0 < r["p_value"] <= 1 for r in result.rows)
    with (tmp_path / "metrics.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(result.rows)
    text = (tmp_path / "metrics.txt").read_text()
    assert "p[strict]" in text and "p[oracle]" in text and "coarse-level H0" in text
    assert "auc[strict]" in text and "auc[oracle]" in text

    # classifier metric per variant × classifier feature map, the same numbers as the pure function on the files
    assert {(r["variant"], r["feature"]) for r in result.classifier_rows} == {
        (v, f) for v in ("strict", "oracle") for f in config.classifier_features}
    reference = np.concatenate([read_shower_file(p)["showers"]
                                for p in sorted((tmp_path / "data" / "eval-reference").glob("*.h5"))])
    oracle = [read_shower_file(p) for p in result.upsampled["oracle"]]
    geometry = get_geometry("ds2")
    ref_features = study_features(reference, np.ones(len(reference)), geometry, ["calochallenge"], "A")["calochallenge"]
    up_features = study_features(np.concatenate([o["showers"] for o in oracle]),
                                 np.concatenate([o["incident_energies"] for o in oracle]), geometry,
                                 ["calochallenge"], "A")["calochallenge"]
    direct = classifier_metric(ref_features, up_features, dataclasses.replace(config.classifier, seed=config.seed))
    row = next(r for r in result.classifier_rows if r["variant"] == "oracle" and r["feature"] == "calochallenge")
    assert row["auc"] == pytest.approx(direct.auc, abs=1e-12) and row["jsd"] == pytest.approx(direct.jsd, abs=1e-12)
    assert all(0 <= r["auc"] <= 1 and r["auc_err"] >= 0 and Path(r["plot_path"]).is_file()
               for r in result.classifier_rows)

    # fine layer energies against the reference's spread, recomputed here from the written files
    reference_layers = reference.reshape(len(reference), 45, -1).astype(np.float64).sum(axis=2)
    for variant in ("strict", "oracle"):
        row = next(r for r in result.coarse_rows if r["variant"] == variant)
        upsampled = np.concatenate([read_shower_file(p)["showers"] for p in result.upsampled[variant]])
        up_layers = upsampled.reshape(len(upsampled), 45, -1).astype(np.float64).sum(axis=2)
        within = np.abs(up_layers.mean(0) - reference_layers.mean(0)) <= reference_layers.std(0)
        assert row["layers_within_spread"] == within.sum()

    # coarse-level energy conservation, recomputed here from the written HDF5 files
    fine_inputs = np.concatenate([read_shower_file(p)["showers"] for p in result.inputs["oracle"]])
    coarse_in = _coarse_independently(fine_inputs)
    for variant in ("strict", "oracle"):
        upsampled = np.concatenate([read_shower_file(p)["showers"] for p in result.upsampled[variant]])
        assert upsampled.shape == fine_inputs.shape == (120, 6480)
        coarse_up = _coarse_independently(upsampled)
        deficit = coarse_in - coarse_up
        filled = coarse_in > 0
        assert np.all(coarse_up[~filled] == 0)
        assert np.all(deficit[filled] >= -1e-5 * coarse_in[filled])           # the cut only removes energy
        assert np.all(deficit[filled] <= 10 * THRESHOLD_MEV + 1e-5 * coarse_in[filled])  # ≤ g · 15 keV
        beyond = np.maximum(deficit[filled] - 10 * THRESHOLD_MEV, 0) / coarse_in[filled]
        assert beyond.max() < 1e-5
        big = coarse_in >= 100.0  # 100 MeV coarse voxels: the cut is ≤ 0.15 %
        assert np.max(np.abs(deficit[big]) / coarse_in[big]) < 2e-3
        row = next(r for r in result.coarse_rows if r["variant"] == variant)
        assert row["frac_within_tol"] == 1.0 and row["max_rel_dev_beyond_cut"] < 1e-5 and row["n_spurious"] == 0
        assert row["coarse_h0_accepted"] and row["min_p_coarse"] >= config.alpha / row["n_coarse_tests"]

    for name in ("layer_distributions", "shower_shapes", "pvalues_strict", "pvalues_oracle"):
        assert (tmp_path / "plots" / f"{name}.png").is_file()
    assert (tmp_path / "provenance.json").is_file()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["choice"] == "A" and "strict.voxels.mean-ks.b100.p_value" in run.data.metrics
    assert "oracle.coarse_level.max_rel_dev_beyond_cut" in run.data.metrics
    assert "strict.voxels-normalized.classifier.auc" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"plots", "metrics.csv", "metrics.txt", "provenance.json"} <= artifacts
    names = {m.name for m in client.search_registered_models()}
    assert {"superres-study-ds2-A-strict", "superres-study-ds2-A-oracle"} <= names
    from caloray.superres.pipeline import load_superres

    model = load_superres("superres-study-ds2-A-oracle", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")[0]
    assert model.config()["fractions"] == "stick" and not model.needs_preprocessing_fit  # fitted by the trainer
