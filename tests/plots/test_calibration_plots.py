import numpy as np
from matplotlib.image import imread

from caloray.plots.calibration import plot_asymmetry, plot_error_vs_resolution


def test_error_vs_resolution_and_asymmetry_write_images(tmp_path):
    rng = np.random.default_rng(0)
    res = rng.uniform(0.03, 0.1, 500)
    ratios = 1 + rng.normal(0, res)
    out = plot_error_vs_resolution(ratios, res, tmp_path / "err.png", title="t")
    assert imread(out).shape[0] > 100
    out = plot_asymmetry(np.exp(rng.normal(0.05, 0.1, 500)), tmp_path / "asym.png")
    assert imread(out).shape[0] > 100


def test_plots_with_no_finite_estimates_still_write_a_figure(tmp_path):
    # Every shower at the edge of the training range: all estimates NaN. The report must not crash.
    nan = np.full(20, np.nan)
    assert plot_error_vs_resolution(nan, nan, tmp_path / "err.png").exists()
    assert plot_asymmetry(nan, tmp_path / "asym.png").exists()
    assert plot_asymmetry(np.array([]), tmp_path / "asym0.png").exists()
