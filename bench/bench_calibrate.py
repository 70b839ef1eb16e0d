"""MLE calibration speed: the batched engine vs the calibration paper's grid procedure and a scipy reference.

Builds a Flow-I ensemble of 10 members (a briefly trained flow and 9 perturbed copies, so all members are
distinct), simulates ECAL+HCAL pions at 10 and 50 GeV and reports, on one thread, showers/s of
- the engine (`caloray.calibrate.engine.calibrate_features`: short scan, stencil-Newton, Illinois
  crossings, members batched in one pass, ~1k candidate rows per call);
- BASELINE, the paper's procedure re-implemented here: per shower a fixed grid of 1600 candidate energies
  over the range, each member's log-likelihood on all grid points in one batch (member loop),
  ensemble likelihood = logsumexp − log K, E_pred = argmax on the grid (no interval);
- the scipy per-shower reference (`caloray.calibrate.reference`),
with the speed-ups, the largest |E_pred difference| engine vs grid (also in units of the grid spacing),
and the largest relative difference engine vs scipy (E_pred, z_lo, z_hi).
Wall-clock and CPU time (time.process_time) are both reported: on a shared machine CPU time is the
steadier ratio.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch

from caloray.calibrate import MLESettings
from caloray.calibrate.engine import calibrate_features, model_log_likelihood, shower_features
from caloray.calibrate.reference import reference_mle
from caloray.geometry import get_geometry
from caloray.models import Ensemble, LayerEnergyFlow
from caloray.sim import SimConfig, simulate_batch

Row = tuple[str, float, str]

#: The paper's grid: candidate energies per shower.
GRID_POINTS = 1600
ENERGY_MIN_MEV, ENERGY_MAX_MEV = 1_000.0, 100_000.0


def _ensemble(n_members: int, steps: int, n_train: int = 4000) -> Ensemble:
    geometry = get_geometry("ecal-hcal")
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="uniform", energy_min_mev=10_000,
                       energy_max_mev=100_000, n_showers=n_train, seed=1)
    energies, showers = simulate_batch(config, np.random.default_rng(1), n_train)
    batch = {"showers": torch.as_tensor(showers, dtype=torch.float32),
             "incident_energies": torch.as_tensor(energies, dtype=torch.float32)}
    torch.manual_seed(0)
    flow = LayerEnergyFlow(geometry.voxel_layer.tolist())
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    for _ in range(steps):
        rows = torch.randint(0, n_train, (200,))
        loss = flow.loss({k: v[rows] for k, v in batch.items()})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    members = []
    for k in range(n_members):
        member = copy.deepcopy(flow)
        with torch.no_grad():
            for p in member.parameters():
                p.add_(1e-3 * k * torch.randn_like(p))
        members.append(member)
    return Ensemble.from_members(members).eval()


@torch.no_grad()
def grid_baseline(ensemble: Ensemble, features: torch.Tensor, z_min: float, z_max: float,
                  points: int = GRID_POINTS) -> np.ndarray:
    """BASELINE (the paper's procedure, not caloray's engine): E_pred (B,) as the argmax of the ensemble
    likelihood on a fixed linear grid of `points` energies, one shower at a time, each member evaluated
    on the whole grid in one batch, members combined as logsumexp − log K."""
    grid = torch.linspace(z_min, z_max, points, dtype=features.dtype)[None, :]
    out = np.empty(len(features))
    for b in range(len(features)):
        x = features[b:b + 1]
        log_p = torch.stack([member.log_prob_features(x, grid) for member in ensemble.members])
        ensemble_log_p = torch.logsumexp(log_p, dim=0) - math.log(len(ensemble.members))
        out[b] = float(grid[0, int(ensemble_log_p.argmax())])
    return out


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n_engine, n_grid, n_reference = (64, 4, 2) if args.quick else (1024, 24, 6)
    torch.set_num_threads(1)
    ensemble = _ensemble(10, 100 if args.quick else 400)
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="fixed", energies_mev=(10_000.0, 50_000.0),
                       n_showers=n_engine, seed=2)
    _, showers = simulate_batch(config, np.random.default_rng(2), n_engine)
    features = shower_features(ensemble, torch.as_tensor(showers, dtype=torch.float32))
    settings = MLESettings(n_scan=24, rtol=1e-6)

    counter = {"rows": 0}
    log_likelihood = model_log_likelihood(ensemble, features)

    def counting(z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        counter["rows"] += z.numel()
        return log_likelihood(z, rows)

    calibrate_features(ensemble, features[:8], ENERGY_MIN_MEV, ENERGY_MAX_MEV, settings)  # warm-up
    result, wall_engine, cpu_engine = _timed(
        lambda: calibrate_features(ensemble, features, ENERGY_MIN_MEV, ENERGY_MAX_MEV, settings))
    from caloray.calibrate.mle import FLOAT32_STENCIL, find_mle

    find_mle(counting, n_engine, ENERGY_MIN_MEV, ENERGY_MAX_MEV,
             MLESettings(n_scan=24, rtol=1e-6, stencil=FLOAT32_STENCIL))
    grid, wall_grid, cpu_grid = _timed(
        lambda: grid_baseline(ensemble, features[:n_grid], ENERGY_MIN_MEV, ENERGY_MAX_MEV))
    reference, wall_reference, cpu_reference = _timed(
        lambda: reference_mle(model_log_likelihood(ensemble, features[:n_reference]), n_reference, ENERGY_MIN_MEV,
                              ENERGY_MAX_MEV, n_scan=48))
    per = {"engine": (wall_engine / n_engine, cpu_engine / n_engine),
           "grid": (wall_grid / n_grid, cpu_grid / n_grid),
           "scipy": (wall_reference / n_reference, cpu_reference / n_reference)}
    spacing = (ENERGY_MAX_MEV - ENERGY_MIN_MEV) / (GRID_POINTS - 1)
    e_pred = result.e_pred.numpy()
    grid_difference = float(np.max(np.abs(e_pred[:n_grid] - grid)))
    engine = np.stack([e_pred, result.z_lo.numpy(), result.z_hi.numpy()], axis=1)[:n_reference]
    ok = np.isfinite(reference) & np.isfinite(engine)
    worst = float(np.max(np.abs(engine[ok] - reference[ok]) / reference[ok])) if ok.any() else float("nan")
    rows: list[Row] = [
        ("engine, ensemble of 10 Flow-I (CPU, 1 thread)", 1.0 / per["engine"][0], "showers/s"),
        ("engine likelihood evaluations per shower", counter["rows"] / n_engine, "candidate energies"),
        (f"BASELINE paper grid ({GRID_POINTS} points, member loop), same ensemble", 1.0 / per["grid"][0],
         "showers/s"),
        ("engine speed-up over paper grid, wall (goal ≥ 20×)", per["grid"][0] / per["engine"][0], "×"),
        ("engine speed-up over paper grid, CPU time", per["grid"][1] / per["engine"][1], "×"),
        (f"max abs(E_pred engine − grid) over {n_grid} showers", grid_difference, "MeV"),
        ("  the same in grid spacings", grid_difference / spacing, "spacings"),
        ("scipy per-shower reference, same ensemble", 1.0 / per["scipy"][0], "showers/s"),
        ("engine speed-up over scipy reference, wall", per["scipy"][0] / per["engine"][0], "×"),
        ("largest relative difference engine vs scipy reference", worst, ""),
    ]
    if torch.cuda.is_available():
        gpu = ensemble.cuda()
        features_gpu = features.cuda()
        calibrate_features(gpu, features_gpu[:16], ENERGY_MIN_MEV, ENERGY_MAX_MEV, settings)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        calibrate_features(gpu, features_gpu, ENERGY_MIN_MEV, ENERGY_MAX_MEV, settings)
        torch.cuda.synchronize()
        rows.append(("engine, ensemble of 10 Flow-I (GPU)", n_engine / (time.perf_counter() - t0), "showers/s"))
    for name, value, unit in rows:
        print(f"{name:70s} {value:12.4g} {unit}")
    return rows


if __name__ == "__main__":
    main()
