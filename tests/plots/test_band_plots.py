import numpy as np
from matplotlib.image import imread

from caloray.models.bayesian import histogram_band
from caloray.plots.band import plot_histogram_band


def test_band_plot_writes_an_image(tmp_path):
    rng = np.random.default_rng(0)
    edges = np.linspace(-3, 3, 31)
    band = histogram_band([rng.normal(0, 1, 2000) for _ in range(5)], edges)
    reference = np.histogram(rng.normal(0, 1, 2000), bins=edges, density=True)[0]
    out = plot_histogram_band(band, tmp_path / "band.png", reference, xlabel="x", title="t")
    assert imread(out).shape[0] > 100
