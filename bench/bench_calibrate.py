"""MLE calibration speed: the batched engine vs the scipy per-shower reference on the same ensemble.

Builds a Flow-I ensemble of 10 members (a briefly trained flow and 9 perturbed copies, so all members are
distinct), simulates ECAL+HCAL pions at 50 GeV and reports showers/s of both methods, their ratio, and the
largest relative disagreement (E_pred, z_lo, z_hi) on the reference subset.
"""

from __future__ import annotations

import argparse
import copy
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


def _ensemble(n_members: int, steps: int) -> Ensemble:
    geometry = get_geometry("ecal-hcal")
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="uniform", energy_min_mev=10_000,
                       energy_max_mev=100_000, n_showers=4000, seed=1)
    energies, showers = simulate_batch(config, np.random.default_rng(1), 4000)
    batch = {"showers": torch.as_tensor(showers, dtype=torch.float32),
             "incident_energies": torch.as_tensor(energies, dtype=torch.float32)}
    torch.manual_seed(0)
    flow = LayerEnergyFlow(geometry.voxel_layer.tolist())
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    for _ in range(steps):
        rows = torch.randint(0, 4000, (200,))
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


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n_engine, n_reference = (64, 2) if args.quick else (512, 6)
    torch.set_num_threads(1)
    ensemble = _ensemble(10, 100 if args.quick else 400)
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="fixed", energies_mev=(50_000.0,),
                       n_showers=n_engine, seed=2)
    _, showers = simulate_batch(config, np.random.default_rng(2), n_engine)
    features = shower_features(ensemble, torch.as_tensor(showers, dtype=torch.float32))
    settings = MLESettings(n_scan=48, rtol=1e-6)
    t0 = time.perf_counter()
    result = calibrate_features(ensemble, features, 1_000.0, 100_000.0, settings)
    t_engine = (time.perf_counter() - t0) / n_engine
    t0 = time.perf_counter()
    reference = reference_mle(model_log_likelihood(ensemble, features[:n_reference]), n_reference, 1_000.0,
                              100_000.0, n_scan=48)
    t_reference = (time.perf_counter() - t0) / n_reference
    engine = np.stack([result.e_pred.numpy(), result.z_lo.numpy(), result.z_hi.numpy()], axis=1)[:n_reference]
    ok = np.isfinite(reference) & np.isfinite(engine)
    worst = float(np.max(np.abs(engine[ok] - reference[ok]) / reference[ok])) if ok.any() else float("nan")
    rows: list[Row] = [
        ("engine, ensemble of 10 Flow-I (CPU, 1 thread)", 1.0 / t_engine, "showers/s"),
        ("scipy per-shower reference, same ensemble", 1.0 / t_reference, "showers/s"),
        ("engine speed-up over reference (goal ≥ 100×)", t_reference / t_engine, "×"),
        ("largest relative difference engine vs reference", worst, ""),
    ]
    if torch.cuda.is_available():
        gpu = ensemble.cuda()
        features_gpu = features.cuda()
        calibrate_features(gpu, features_gpu[:16], 1_000.0, 100_000.0, settings)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        calibrate_features(gpu, features_gpu, 1_000.0, 100_000.0, settings)
        torch.cuda.synchronize()
        rows.append(("engine, ensemble of 10 Flow-I (GPU)", n_engine / (time.perf_counter() - t0), "showers/s"))
    for name, value, unit in rows:
        print(f"{name:55s} {value:12.4g} {unit}")
    return rows


if __name__ == "__main__":
    main()
