"""The Bayesian INN's uncertainty band against a held-out simulated sample (issue #12: covered in ≥ 68 % of bins).

A `BayesianShowerINN` is trained with the ELBO on simulated ds1-photons showers; for each of `DRAWS` fixed weight
draws it generates as many showers as the held-out set, at the held-out incident energies (its own latent noise per
draw). Per histogram (E_tot/E_inc and log10 of each layer energy; 20 bins between the held-out sample's 1 % and
99 % quantiles) the band is mean ± std over draws. Every histogram is the fraction of *all* showers per unit x on
both sides (a model that puts showers outside the range is not renormalized away). A bin is covered when the
held-out value lies inside the band, reported with the held-out sample's own statistical error added in quadrature
and for the band alone; bins empty on both sides are not counted (`caloray.models.bayesian.band_coverage`).

Voxels: "radial" (default) trains on the showers summed over the angular bins (53 radial-profile voxels of the 368,
the thesis' reduced-resolution study, Sec. 4.2.3): the histograms checked depend only on the layer energies,
which the sum leaves unchanged, and the 58-feature BINN costs 3.6–5× less CPU per training shower than the
373-feature one (0.12 vs 0.43 s per step of 256, 0.34 vs 1.7 s per step of 1024, one core), so ~51 epochs of 50k
fit in ≈ 12 minutes of one core, where the full one gets ~9 (its figures: `--voxels full`).

Usage: `python -m bench.binn_coverage [--quick] [--voxels radial|full]` (also the coverage half of
`python -m bench.bench_inn`).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from caloray.generate.band import reference_density
from caloray.geometry import Geometry, get_geometry
from caloray.models import BayesianShowerINN
from caloray.models.bayesian import band_coverage, bayesian_layers, counted_bins, histogram_band
from caloray.models.features import layer_sums
from caloray.sim import SimConfig
from caloray.sim.shower import simulate_batch

Row = tuple[str, float, str]

#: Weight draws per band.
DRAWS = 10
#: Bins per histogram (fewer where quantile edges coincide).
BINS = 20
#: Sizes and training: (training showers, held-out showers, optimizer steps, batch size). Full: ≈ 15 min of one
#: CPU core for the radial BINN (0.34 s per step of 1024 on an idle core; ~51 epochs).
SIZES = {"quick": (4000, 4000, 150, 256), "full": (50_000, 10_000, 2500, 1024)}
#: Seeds of the training and held-out simulations: independent samples.
TRAIN_SEED, HELD_OUT_SEED = 0, 1


def radial_profile_map(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """(pooled voxel of each voxel (V,), layer of each pooled voxel (V_r,)) for summing a cylindrical geometry's
    voxels over their angular bins: one pooled voxel per (layer, radial bin), ordered by layer, then r."""
    keys = geometry.voxel_layer.astype(np.int64) * (int(geometry.voxel_r_bin.max()) + 1) + geometry.voxel_r_bin
    unique, pooled = np.unique(keys, return_inverse=True)
    return pooled, unique // (int(geometry.voxel_r_bin.max()) + 1)


def pool_voxels(showers: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Showers (N, V) MeV summed into pooled voxels (N, max(pooled) + 1) MeV (energy conserved)."""
    out = np.zeros((len(showers), int(pooled.max()) + 1), dtype=np.float64)
    np.add.at(out.T, pooled, np.asarray(showers, dtype=np.float64).T)
    return out.astype(np.float32)


def band_features(showers: np.ndarray, energies: np.ndarray, voxel_layer: torch.Tensor, n_layers: int) -> np.ndarray:
    """(N, 1 + L): E_tot / E_inc and log10(E_layer / MeV + 1e-3) of showers (N, V) MeV at E_inc (N,) MeV."""
    layers = layer_sums(torch.as_tensor(showers, dtype=torch.float64), voxel_layer, n_layers).numpy()
    return np.column_stack([layers.sum(1) / energies, np.log10(layers + 1e-3)])


def train_binn(model: BayesianShowerINN, showers: np.ndarray, energies: np.ndarray, steps: int, batch_size: int,
               seed: int = 0) -> dict[str, float]:
    """ELBO training with Adam and a one-cycle schedule (max lr 1e-3, the project's recipes); returns the last
    100 steps' mean negative log-likelihood and KL/train_size (nats per shower) and the CPU seconds taken."""
    train = {"showers": torch.as_tensor(showers), "incident_energies": torch.as_tensor(energies, dtype=torch.float32)}
    model.fit_preprocessing(train)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    start, nll, kl = time.process_time(), [], []
    for step in range(steps):
        rows = torch.randint(0, len(showers), (batch_size,), generator=generator)
        optimizer.zero_grad()
        batch = {key: value[rows] for key, value in train.items()}
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        schedule.step()
        kl.append(float(model.kl().detach()) / model.train_size)
        nll.append(float(loss.detach()) - kl[-1])
        if (step + 1) % 250 == 0:
            print(f"[binn] step {step + 1}/{steps}: NLL {np.mean(nll[-250:]):.2f}, KL/N {kl[-1]:.2f} nats, "
                  f"{time.process_time() - start:.0f} CPU s", file=sys.stderr, flush=True)
    model.eval()
    return {"nll": float(np.mean(nll[-100:])), "kl": float(np.mean(kl[-100:])), "cpu_s": time.process_time() - start}


def coverage_table(reference: np.ndarray, per_draw: list[np.ndarray], bins: int = BINS) -> list[dict[str, float]]:
    """Per column of the features (N, d): {"bins", "combined", "band"}: the number of bins counted and the fraction
    covered by mean ± std over draws ⊕ the reference's statistical error, and by the band alone."""
    table = []
    for column in range(reference.shape[1]):
        edges = np.unique(np.quantile(reference[:, column], np.linspace(0.01, 0.99, bins + 1)))
        band = histogram_band([values[:, column] for values in per_draw], edges, per_shower=True)
        density, error = reference_density(reference[:, column], edges, per_shower=True)
        used = int(counted_bins(band, density).sum())
        table.append({"bins": used, "combined": band_coverage(band, density, reference_std=error),
                      "band": band_coverage(band, density)})
    return table


def coverage_rows(quick: bool, voxels: str = "radial", steps: int | None = None, **binn: float) -> list[Row]:
    """The coverage figures; `steps` overrides the size's optimizer steps, `binn` the model's keyword arguments
    (e.g. prior_std, init_log_var)."""
    geometry = get_geometry("ds1-photons")
    config = SimConfig.preset("ds1-photons", prior="log-uniform", energy_min_mev=1e3, energy_max_mev=1e5)
    n_train, n_test, default_steps, batch_size = SIZES["quick" if quick else "full"]
    steps = default_steps if steps is None else int(steps)
    energies, showers = simulate_batch(config, np.random.default_rng(TRAIN_SEED), n_train)
    test_energies, test_showers = simulate_batch(config, np.random.default_rng(HELD_OUT_SEED), n_test)
    voxel_layer = geometry.voxel_layer
    if voxels == "radial":
        pooled, voxel_layer = radial_profile_map(geometry)
        showers, test_showers = pool_voxels(showers, pooled), pool_voxels(test_showers, pooled)
    elif voxels != "full":
        raise ValueError(f"voxels must be 'radial' or 'full', got {voxels!r}")
    torch.manual_seed(0)
    model = BayesianShowerINN(voxel_layer.tolist(), train_size=n_train, **binn)
    fit = train_binn(model, showers, energies, steps, batch_size)
    log_var = torch.cat([torch.cat([layer.weight_log_var.detach().flatten(), layer.bias_log_var.detach().flatten()])
                         for layer in bayesian_layers(model)]).numpy()
    reference = band_features(test_showers, test_energies, model.voxel_layer, model.n_layers)
    held_out_energies = torch.as_tensor(test_energies, dtype=torch.float32)
    per_draw = []
    for draw in range(DRAWS):
        torch.manual_seed(100 + draw)  # the draw's latent noise; its weights come from weight_draw_seed
        generated = model.sample(held_out_energies, weight_draw_seed=draw)["showers"].numpy()
        per_draw.append(band_features(generated, test_energies, model.voxel_layer, model.n_layers))
    table = coverage_table(reference, per_draw)
    names = ["E_tot/E_inc", *(f"log10 E_layer{i}" for i in range(model.n_layers))]
    where = f"ds1-photons {voxels} ({model.n_voxels} voxels), {n_train} training / {n_test} held-out showers"
    rows: list[Row] = []
    for name, entry in zip(names, table, strict=True):
        rows.append((f"BINN band coverage {name} ({entry['bins']} bins), band ⊕ held-out stat. error",
                     entry["combined"], "fraction"))
        rows.append((f"BINN band coverage {name}, band alone", entry["band"], "fraction"))
    bins = np.array([entry["bins"] for entry in table])
    total = int(bins.sum())
    rows += [
        (f"BINN band coverage, all {total} bins (mean ± std over {DRAWS} draws ⊕ held-out stat. error), {where}",
         float((bins * [entry["combined"] for entry in table]).sum() / total), "fraction"),
        (f"BINN band coverage, all {total} bins, band alone", float((bins * [e["band"] for e in table]).sum() / total),
         "fraction"),
        (f"BINN training: {steps} steps of {batch_size}, CPU time (1 thread)", fit["cpu_s"] / 60, "min"),
        ("BINN final negative log-likelihood per shower (last 100 steps)", fit["nll"], "nats"),
        ("BINN final KL / train_size per shower (last 100 steps)", fit["kl"], "nats"),
        ("BINN Bayesian weights' log σ², median (initial −9, prior 0)", float(np.median(log_var)), ""),
    ]
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench.binn_coverage", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--voxels", choices=("radial", "full"), default="radial")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a shared 2-core machine: one thread keeps the run's wall time predictable
    rows = coverage_rows(args.quick, args.voxels)
    for name, value, unit in rows:
        print(f"{name:110s} {value:12.4g} {unit}")
    return rows


if __name__ == "__main__":
    main()
