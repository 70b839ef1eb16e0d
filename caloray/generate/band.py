"""The Bayesian INN's uncertainty band in a generation's automatic validation (spec §6).

For a Bayesian generator (`ShowerSampler.bayesian`) the validation energies are generated again with `BAND_DRAWS`
fixed weight draws; every histogram drawn in the validation figures gets its band (mean ± std over draws, min–max
envelope) against the reference, as `band/<feature>-<column>.png`, and `band/coverage.csv` records per
histogram the fraction of bins whose reference value lies inside the band (reference statistical error added
in quadrature, `caloray.models.bayesian.band_coverage`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from caloray.features.maps import feature_columns
from caloray.generate.models import ShowerSampler
from caloray.geometry import Geometry
from caloray.models.bayesian import band_coverage, counted_bins, histogram_band
from caloray.plots.band import plot_histogram_band
from caloray.plots.features import panel_columns
from caloray.plots.hep import axis_label, binning

#: Weight draws per band (each regenerates the validation sample once).
BAND_DRAWS = 10
#: Second entry of the seed sequence of the band's draws (the first is the validation seed).
BAND_STREAM = 7


def band_seeds(seed: int, n_draws: int = BAND_DRAWS) -> list[tuple[int, int]]:
    """(torch noise seed, weight-draw seed) per draw, a pure function of the validation seed."""
    state = np.random.SeedSequence([int(seed), BAND_STREAM]).generate_state(2 * n_draws, dtype=np.uint32)
    return [(int(state[2 * i]), int(state[2 * i + 1])) for i in range(n_draws)]


def reference_density(values: np.ndarray, edges: np.ndarray, per_shower: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(density (K,), its Poisson error (K,)) of values on edges, normalized like `np.histogram(density=True)`, or
    with `per_shower` by the number of values including those outside the edges (as `histogram_band`'s)."""
    counts = np.histogram(values, bins=edges)[0].astype(np.float64)
    total = np.size(values) if per_shower else counts.sum()
    scale = 1.0 / (max(total, 1.0) * np.diff(edges))
    return counts * scale, np.sqrt(counts) * scale


def draw_bands(sampler: ShowerSampler, energies: np.ndarray, reference: dict[str, np.ndarray], geometry: Geometry,
               folder: Path, seed: int, batch_size: int, n_draws: int = BAND_DRAWS) -> float:
    """Regenerate `energies` (MeV) with `n_draws` weight draws, plot each feature map's histograms (the columns
    the comparison figures draw, `caloray.plots.features.panel_columns`) with the band and the reference features
    (name → (N, d)), write band/coverage.csv.

    Returns the fraction of all plotted bins covered by the band (mean ± std ⊕ reference error).
    """
    from caloray.generate.validation import candidate_features

    names = list(reference)
    draws = [candidate_features(sampler, energies, noise_seed, geometry, names, batch_size,
                                weight_draw_seed=weight_seed) for noise_seed, weight_seed in band_seeds(seed, n_draws)]
    out = folder / "band"
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, list] = {key: [] for key in ("feature", "column", "quantity", "bins", "coverage")}
    for name in names:
        d = reference[name].shape[1]
        columns = feature_columns(name, d, geometry)
        for j in panel_columns(d):
            quantity, unit, log = columns[j]
            per_draw = [draw[name][:, j] for draw in draws]
            edges = binning([reference[name][:, j], *per_draw], log=log)
            band = histogram_band(per_draw, edges)
            density, error = reference_density(reference[name][:, j], edges)
            plot_histogram_band(band, out / f"{name}-{j}.png", reference=density, xlabel=axis_label(quantity, unit),
                                title=f"{name}: {n_draws} weight draws")
            used = int(counted_bins(band, density).sum())
            for key, value in zip(records, (name, j, quantity, used,
                                            band_coverage(band, density, reference_std=error)), strict=True):
                records[key].append(value)
    pacsv.write_csv(pa.table(records), out / "coverage.csv")
    bins, coverage = np.array(records["bins"]), np.array(records["coverage"])
    return float((bins * coverage).sum() / bins.sum())
