"""Super-resolution figures: every sample against the reference with ratio panels, histograms saved beside them."""

import numpy as np

from caloray.geometry import get_geometry
from caloray.plots.histfile import histogram_path, read_histograms, replot
from caloray.plots.superres import layer_radial_moments, plot_layer_distributions, plot_shower_shapes


def test_layer_distributions_and_shower_shapes(tmp_path):
    geometry = get_geometry("ds2")
    rng = np.random.default_rng(8)
    reference = rng.exponential(1.0, (150, geometry.n_voxels)) * (rng.random((150, geometry.n_voxels)) < 0.2)
    samples = {"reference": reference, "strict": reference[:100] * 1.2, "oracle": reference[50:] * 0.9}
    png = plot_layer_distributions(samples, geometry, [1, 20], tmp_path / "layers.png")
    hists, meta = read_histograms(histogram_path(png))
    assert len(meta["panels"]) == 6 and meta["n_cols"] == 2
    energy = meta["panels"][1]  # row 1 (energies), layer 20
    assert (energy["quantity"], energy["unit"], energy["log"]) == ("E_layer", "GeV", True)
    oracle = hists[energy["histograms"]["oracle"]]
    expected = layer_radial_moments(samples["oracle"], geometry, 19)["energy"] * 1e-3
    assert oracle.values(flow=True).sum() == len(expected)
    np.testing.assert_array_equal(oracle.values(), np.histogram(expected, oracle.axes[0].edges)[0])
    assert len(replot(hists, meta).axes) == 12  # 6 panels, each with its ratio panel
    png = plot_shower_shapes(samples, geometry, tmp_path / "shapes.png")
    _, meta = read_histograms(histogram_path(png))
    assert [p["quantity"] for p in meta["panels"]][:3] == ["centroid alpha", "centroid r", "centroid z"]
    assert [p["unit"] for p in meta["panels"]][:3] == ["rad", "mm", "layer"]
