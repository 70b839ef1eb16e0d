"""HEP figures: ratio panels from known distributions, histograms saved as ROOT, reloaded, merged and re-drawn."""

from pathlib import Path

import numpy as np
import pytest

from caloray.geometry import get_geometry
from caloray.plots.features import plot_feature_comparison
from caloray.plots.hep import binning, compare_histograms, fill_histogram
from caloray.plots.histfile import (
    HistogramFileError,
    histogram_path,
    merge_histogram_files,
    read_histograms,
    replot,
    save_figure,
    write_histograms,
)
from caloray.validate import plot_null_vs_alternative, summarize
from caloray.validate.summary import calibrated_test

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_fill_keeps_counts_variances_and_flow():
    values = np.array([-1.0, 0.5, 0.5, 1.5, 2.5, 7.0, np.nan])
    h = fill_histogram(values, np.array([0.0, 1.0, 2.0, 3.0]), label="E [MeV]")
    np.testing.assert_array_equal(h.values(), [2, 1, 1])
    np.testing.assert_array_equal(h.variances(), [2, 1, 1])  # unit weights: variance = count (Poisson)
    np.testing.assert_array_equal(h.values(flow=True), [1, 2, 1, 1, 1])  # NaN dropped, −1 and 7 in the flow bins
    edges = binning([np.array([0.0, 1.0, 10.0, 100.0])], log=True, bins=4)
    assert edges[0] > 0 and np.allclose(np.diff(np.log(edges)), np.log(edges[1] / edges[0]))


def test_comparison_ratio_matches_the_analytic_ratio(tmp_path):
    """Candidate = reference sample with each value doubled: on a log axis with bins a factor 2 apart, the
    candidate's bin k + 1 holds exactly the reference's bin k, so the drawn ratio is a known shift."""
    rng = np.random.default_rng(3)
    reference = rng.exponential(100.0, 20_000) + 1.0
    edges = np.geomspace(1.0, 1024.0, 11)
    figure, hists = compare_histograms(reference, 2 * reference, edges, xlabel="E_total", unit="MeV", log=True,
                                       density=False)
    ref, cand = hists["reference"], hists["candidate"]
    np.testing.assert_array_equal(cand.values()[1:], ref.values()[:-1])
    assert ref.axes[0].label == "E_total [MeV]"
    main, ratio = figure.axes
    assert main.get_xscale() == ratio.get_xscale() == "log"
    assert ratio.get_xlabel() == "E_total [MeV]" and main.get_ylabel() == "showers / bin"
    points = ratio.containers[0]  # the candidate's ratio error bars
    y = points.lines[0].get_ydata()
    expected = cand.values() / ref.values()
    np.testing.assert_allclose(y, expected)
    # error bars: candidate's Poisson error over the reference content
    segments = points.lines[2][0].get_segments()
    half = np.array([(s[1][1] - s[0][1]) / 2 for s in segments])
    np.testing.assert_allclose(half, np.sqrt(cand.values()) / ref.values())
    png = save_figure(figure, tmp_path / "cmp.png", hists, {"kind": "comparison", "reference": "reference",
                                                             "xlabel": "E_total", "unit": "MeV", "log": True,
                                                             "density": False})
    assert png.read_bytes()[:8] == PNG_MAGIC and histogram_path(png).is_file()


def test_saved_histograms_reload_merge_and_replot(tmp_path):
    """Two shards' histograms written to ROOT, read back, merged: equal to the histogram of the union."""
    rng = np.random.default_rng(4)
    edges = np.linspace(-4, 4, 21)
    shards = [(rng.normal(size=500), rng.normal(0.3, 1.0, size=400)) for _ in range(2)]
    meta = {"kind": "comparison", "reference": "reference", "xlabel": "x", "unit": "mm", "log": False,
            "density": True}
    paths = []
    for i, (ref, cand) in enumerate(shards):
        figure, hists = compare_histograms(ref, cand, edges, xlabel="x", unit="mm")
        paths.append(histogram_path(save_figure(figure, tmp_path / f"shard-{i}.png", hists, meta)))
    loaded, loaded_meta = read_histograms(paths[0])
    assert loaded_meta == meta and loaded["reference"].axes[0].label == "x [mm]"
    np.testing.assert_array_equal(loaded["reference"].values(flow=True),
                                  fill_histogram(shards[0][0], edges, label="").values(flow=True))
    merged, _ = merge_histogram_files(paths)
    union = fill_histogram(np.concatenate([shards[0][1], shards[1][1]]), edges, label="")
    np.testing.assert_array_equal(merged["candidate"].values(flow=True), union.values(flow=True))
    np.testing.assert_array_equal(merged["candidate"].variances(flow=True), union.variances(flow=True))
    figure = replot(merged, meta)
    main, _ = figure.axes
    assert main.get_ylabel() == "fraction of showers / mm"
    figure.savefig(tmp_path / "merged.png")
    assert (tmp_path / "merged.png").read_bytes()[:8] == PNG_MAGIC
    write_histograms(tmp_path / "other.root", {"reference": fill_histogram([0.0], np.linspace(0, 1, 3), label="")},
                     meta)
    with pytest.raises(HistogramFileError, match=r"other\.root: histograms \['reference'\] differ"):
        merge_histogram_files([paths[0], tmp_path / "other.root"])
    (tmp_path / "bad.root").write_bytes(b"junk")
    with pytest.raises(HistogramFileError, match=r"bad\.root: unreadable histogram file"):
        read_histograms(tmp_path / "bad.root")


def test_null_vs_alternative_marks_observed_and_prints_the_test(tmp_path: Path):
    rng = np.random.default_rng(0)
    null, alt = rng.normal(size=300), rng.normal(1.0, 1.0, size=300)
    test = calibrated_test(rng.normal(size=199), 1.2, batch_size=250)
    result = summarize(null, alt, "swd", test=test)
    design = {"batch_size": 250, "n_iter": 300, "n_slices": 64, "mode": "bootstrap", "seed": 0}
    png = plot_null_vs_alternative(result, tmp_path / "t.png", "layer-energies: swd", feature="layer-energies",
                                   d=5, design=design)
    hists, meta = read_histograms(histogram_path(png))
    assert hists["null"].values(flow=True).sum() == 300 == hists["alternative"].values(flow=True).sum()
    assert meta["observed"] == pytest.approx(np.median(result.alt)) and meta["p_value"] == result.p_value
    assert meta["n_null"] == 199 and meta["test_statistic"] == 1.2  # the calibrated test's own permutation null
    figure = replot(hists, meta)
    axes = figure.axes[0]
    text = axes.texts[0].get_text()
    assert text.startswith("calibrated test\n")
    assert f"p = {result.p_value:.3g}\nσ = {result.sigma:.2f}" in text and "feature map: layer-energies" in text
    assert "d = 5, batch size = 250" in text and "slices = 64" in text
    assert any(np.allclose(line.get_xdata(), result.observed) for line in axes.lines)
    assert any(np.allclose(line.get_xdata(), 1.2) for line in axes.lines)
    # Without a calibrated test the figure prints the thesis summary, labelled as one.
    far = summarize(rng.normal(size=99), rng.normal(10.0, 1.0, size=99), "mean-ks")
    png = plot_null_vs_alternative(far, tmp_path / "far.png", feature="total-energy", d=1, design=design)
    text = replot(*read_histograms(histogram_path(png))).axes[0].texts[0].get_text()
    assert text.startswith("median_p (summary, not a test)\np ≤ 0.01 (floor of 99 nulls)\nσ ≥ 2.33")
    assert "slices" not in text


def test_feature_comparison_grid_has_units_and_ratio_panels(tmp_path):
    geometry = get_geometry("ds1-photons")
    rng = np.random.default_rng(2)
    reference = rng.exponential(1e3, (400, 5)) * (rng.random((400, 5)) < 0.8)
    png = plot_feature_comparison("layer-energies", reference, reference[:200] * 1.1, geometry,
                                  tmp_path / "layer-energies.png")
    hists, meta = read_histograms(histogram_path(png))
    assert len(meta["panels"]) == 5 and meta["panels"][0]["zero_fraction"][0] == pytest.approx(
        np.mean(reference[:, 0] <= 0))
    assert meta["feature"] == "layer-energies" and meta["d"] == 5
    counts = hists["reference/0"].values(flow=True)
    assert counts.sum() == 400 and counts[0] >= np.sum(reference[:, 0] <= 0)  # zeros: underflow of the log bins
    figure = replot(hists, meta)
    assert len(figure.axes) == 10 and figure.axes[1].get_xlabel() == "E_layer 0 [MeV]"


def test_layer_energy_summary_panels_keep_every_shower(tmp_path):
    from caloray.plots.summary import plot_layer_energies

    rng = np.random.default_rng(6)
    energies = rng.lognormal(6, 1.5, (300, 14)) * (rng.random((300, 14)) < 0.7)
    png = plot_layer_energies(energies, tmp_path / "layers.png")
    hists, meta = read_histograms(histogram_path(png))
    assert [p["title"] for p in meta["panels"]][:2] == ["layer 0", "layer 1"] and len(meta["panels"]) == 12
    last = meta["panels"][-1]
    assert last["title"] == "layer 13" and last["zero_fraction"] == [pytest.approx(np.mean(energies[:, 13] <= 0))]
    h = hists[last["histograms"]["showers"]]
    assert h.values(flow=True).sum() == 300 and h.axes[0].label == "E_layer [GeV]"
    np.testing.assert_array_equal(h.values(), np.histogram(energies[:, 13] / 1e3, h.axes[0].edges)[0])
    assert len(replot(hists, meta).axes) == 12  # single-sample panels: no ratio axes
