"""The Bayesian INN's weight-draw band in the generation's automatic validation: drawn per validation histogram,
recorded (band/coverage.csv, metrics, manifest, summary), covering a reference drawn from the model itself and
not one scaled away from it (no Ray: `run_validation` on this process)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.csv as pacsv
import torch
from generate_world import GEOMETRY_NAME, N_LAYERS

from caloray.generate.band import band_seeds
from caloray.generate.models import ShowerSampler
from caloray.generate.validation import ValidationOutcome, ValidationSettings, run_validation
from caloray.geometry import read_binning_xml
from caloray.io import read_shower_file, write_showers
from caloray.models import BayesianShowerINN, ShowerINN

FEATURES = ["total-energy"]


def _binn(world) -> BayesianShowerINN:
    """An untrained Bayesian INN with broad weight posteriors (σ_w ≈ 0.14), so weight draws visibly differ."""
    train = read_shower_file(world.train_file)
    torch.manual_seed(0)
    model = BayesianShowerINN(list(range(N_LAYERS)), train_size=len(train["showers"]), init_log_var=-4.0, blocks=2,
                              hidden_features=[16])
    model.fit_preprocessing({"showers": torch.as_tensor(train["showers"]),
                             "incident_energies": torch.as_tensor(train["incident_energies"])})
    return model.eval()


def _validate(world, model, reference: Path, folder: Path) -> ValidationOutcome:
    settings = ValidationSettings(n=300, features=FEATURES, statistics=["mean-ks"], n_iter=100, alpha=0.05, seed=3)
    spec = SimpleNamespace(use_gpu=False, context=SimpleNamespace(batch_size=256))
    return run_validation(settings, spec, read_binning_xml(world.geometry_xml), [reference], folder,
                          ShowerSampler(model))


def test_band_is_drawn_recorded_and_covers_only_the_models_own_distribution(world, tmp_path: Path) -> None:
    model = _binn(world)
    energies = read_shower_file(world.train_file)["incident_energies"]
    torch.manual_seed(11)
    own = model.sample(torch.as_tensor(energies), weight_draw_seed=12345)["showers"].numpy()
    own_file = write_showers(tmp_path / "own.h5", own, energies, geometry=GEOMETRY_NAME)
    outcome = _validate(world, model, own_file, tmp_path / "own")

    table = pacsv.read_csv(tmp_path / "own" / "band" / "coverage.csv").to_pylist()
    assert [(r["feature"], r["column"]) for r in table] == [("total-energy", 0)]  # the figures' one histogram
    assert all((tmp_path / "own" / "band" / f"{r['feature']}-{r['column']}.png").stat().st_size > 0 for r in table)
    bins = np.array([r["bins"] for r in table])
    assert np.isclose(outcome.band_coverage, np.sum(bins * [r["coverage"] for r in table]) / bins.sum())
    assert outcome.metrics()["validation.band_coverage"] == outcome.band_coverage
    assert outcome.manifest_entry()["band_coverage"] == outcome.band_coverage
    assert f"{outcome.band_coverage:.1%} of the plotted bins" in (tmp_path / "own" / "summary.txt").read_text()
    assert tmp_path / "own" / "band" in outcome.artifacts
    # A reference that is one more weight draw of the model lies inside mean ± std ⊕ its own error in most bins
    # (≈ 68% or more: the band's std also holds the draws' statistical noise) ...
    assert outcome.band_coverage > 0.55
    # ... and one with every shower ×100 (two decades away) almost nowhere.
    scaled = write_showers(tmp_path / "scaled.h5", own * 100.0, energies, geometry=GEOMETRY_NAME)
    assert _validate(world, model, scaled, tmp_path / "scaled").band_coverage < 0.3


def test_no_band_without_weight_draws(world, tmp_path: Path) -> None:
    model = ShowerINN(list(range(N_LAYERS)), blocks=2, hidden_features=[16]).eval()
    assert not ShowerSampler(model).bayesian and ShowerSampler(_binn(world)).bayesian
    outcome = _validate(world, model, world.train_file, tmp_path / "val")
    assert outcome.band_coverage is None and not (tmp_path / "val" / "band").exists()
    assert "validation.band_coverage" not in outcome.metrics()
    assert band_seeds(3) == band_seeds(3) != band_seeds(4) and len(set(band_seeds(3))) == 10


def test_gpu_worker_reports_whether_the_model_is_bayesian(world, tmp_path: Path) -> None:
    """The GPU path's worker returns its features and whether the generator is Bayesian, so the driver loads the
    model for the band only when it needs it (run here on the CPU: `use_gpu` False picks the CPU device)."""
    from caloray.generate.models import resolve_model_source
    from caloray.generate.validation import _gpu_candidate_features, candidate_features
    from caloray.models import save_model

    geometry = read_binning_xml(world.geometry_xml)
    energies = read_shower_file(world.train_file)["incident_energies"][:50]
    for model, bayesian in ((_binn(world), True), (ShowerINN(list(range(N_LAYERS)), blocks=2).eval(), False)):
        path = save_model(model, tmp_path / f"{model.kind}.pt")
        spec = SimpleNamespace(use_gpu=False, model=resolve_model_source(str(path)), layer_model=None,
                               tracking_uri=None, context=SimpleNamespace(batch_size=16))
        features, flag = _gpu_candidate_features(spec, energies, 5, geometry, FEATURES)
        expected = candidate_features(ShowerSampler(model), energies, 5, geometry, FEATURES, 16)
        assert flag is bayesian and np.array_equal(features["total-energy"], expected["total-energy"])
