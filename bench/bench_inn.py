"""ShowerINN, Bayesian INN and the Flow-II student against the MAF teacher: sampling showers/s side by side, and
the Bayesian INN's uncertainty-band coverage on a held-out simulated sample.

Speed (untrained weights: speed does not depend on them), ds1-photons (368 voxels), CPU with 1 and 2 torch threads
(GPU float32 too when CUDA is available or `--device cuda`):
- ShowerINN and Bayesian INN (default architecture: 6 RQS coupling blocks of 1×64, 8 bins; batch 10k);
- Flow-I → Flow-II chain with the distilled IAF student (teacher-sized MADE blocks, 8 × 512; batch 1000);
- Flow-I → Flow-II chain with the MAF teacher (one MADE pass per voxel when sampling; a handful of showers).
Quick mode uses smaller counts (and a 2 × 64 teacher/student), so only its ratios are comparable.

Coverage (`bench/binn_coverage.py`): a Bayesian INN trained on simulated ds1-photons showers; for each of 10 weight
draws it samples as many showers as the held-out set; per-bin band = mean ± std over draws of the histograms of
E_tot/E_inc and the log10 layer energies. Reported: the fraction of bins whose held-out histogram lies inside the
band, with the held-out sample's own statistical error added in quadrature, and with the band alone.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.binn_coverage import coverage_rows
from caloray.geometry import get_geometry
from caloray.models import BayesianShowerINN, LayerEnergyFlow, ShowerINN, VoxelFlow, VoxelFlowStudent

Row = tuple[str, float, str]


def _energies(n: int) -> torch.Tensor:
    return torch.exp(torch.empty(n).uniform_(np.log(1e3), np.log(1e5)))


def _rate(sample: Callable[[torch.Tensor], torch.Tensor], n: int, batch: int, device: str,
          warmup: int = 1000) -> tuple[float, float]:
    """(showers/s by wall clock, showers per CPU-second of this process) of `sample` over n energies in batches,
    after a warm-up batch of up to `warmup`. On a shared, oversubscribed machine the wall-clock rate drops with
    the load; the CPU-time rate (× threads: the rate with those threads to itself) much less."""
    energies = _energies(n).to(device)
    with torch.no_grad():
        sample(energies[: min(batch, n, warmup)])
        if device == "cuda":
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        for lo in range(0, n, batch):
            sample(energies[lo: lo + batch])
        if device == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - start), n / (time.process_time() - cpu_start)


def _speed_rows(quick: bool, threads: int, device: str) -> list[Row]:
    voxel_layer = get_geometry("ds1-photons").voxel_layer.tolist()
    torch.manual_seed(0)
    flow2 = dict(transforms=2, hidden_features=(64,)) if quick else {}
    teacher = VoxelFlow(voxel_layer, **flow2)
    flow1 = LayerEnergyFlow(voxel_layer).to(device).eval()
    student = VoxelFlowStudent(teacher.config()).to(device).eval()
    teacher = teacher.to(device).eval()
    inn = ShowerINN(voxel_layer).to(device).eval()
    # The shipped -cpu recipe's preprocessing (its inverse runs per sampled shower; unfitted knots cost the same).
    gaussianized = ShowerINN(voxel_layer, marginals="gaussianize", energy_bins=16).to(device).eval()
    binn = BayesianShowerINN(voxel_layer).to(device).eval()

    def chain(flow: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        def sample(energies: torch.Tensor) -> torch.Tensor:
            layers = flow1.sample(energies)["layer_energies"]
            return flow.sample(energies, layer_energies=layers)["showers"]

        return sample

    gpu = device == "cuda"
    # name, sampler, showers, batch, warm-up showers (the teacher samples ~0.15 showers per CPU-second)
    setups = [
        ("ShowerINN", lambda e: inn.sample(e)["showers"], 10_000 if quick else (200_000 if gpu else 20_000), 10_000,
         1000),
        ("ShowerINN gaussianized per energy (16 bins, the -cpu recipes)", lambda e: gaussianized.sample(e)["showers"],
         10_000 if quick else (200_000 if gpu else 20_000), 10_000, 1000),
        ("Bayesian INN (one weight draw per batch)", lambda e: binn.sample(e)["showers"],
         10_000 if quick else (200_000 if gpu else 20_000), 10_000, 1000),
        ("Flow-I → Flow-II student (IAF)", chain(student), 1000 if quick else (100_000 if gpu else 2000), 1000, 1000),
        ("Flow-I → Flow-II teacher (MAF)", chain(teacher), 16 if quick else (512 if gpu else 2), 2 if not gpu else 512,
         1),
    ]
    where = "GPU float32" if gpu else f"CPU {threads} thread{'s' if threads > 1 else ''}"
    rows, cpu_rates = [], []
    for name, sample, n, batch, warmup in setups:
        wall, cpu = _rate(sample, n, batch, device, warmup)
        rows.append((f"sample {name}, ds1-photons 368 voxels, {where}", wall, "showers/s"))
        if not gpu:  # per CPU-second × threads: the rate with the threads to itself
            cpu_rates.append(cpu * threads)
            rows.append((f"sample {name}, ds1-photons 368 voxels, {where}, CPU-time rate", cpu * threads, "showers/s"))
        print(*rows[-1], flush=True)
    walls = [row[1] for row in rows if "CPU-time" not in row[0]]
    student_at, teacher_at = len(setups) - 2, len(setups) - 1
    rows.append((f"Flow-II student / teacher chain speed-up, {where}", walls[student_at] / walls[teacher_at], "×"))
    rows.append((f"ShowerINN gaussianized / standardized sampling time, {where}", walls[0] / walls[1], "×"))
    if cpu_rates:
        rows.append((f"Flow-II student / teacher chain speed-up, {where}, CPU-time",
                     cpu_rates[student_at] / cpu_rates[teacher_at], "×"))
    return rows


def _coverage_rows(quick: bool) -> list[Row]:
    """The coverage half: `bench.binn_coverage` (radial-profile BINN on ds1-photons, held-out simulated sample)."""
    return coverage_rows(quick)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="only this device (default: CPU, plus CUDA when available)")
    parser.add_argument("--no-coverage", action="store_true", help="speed figures only")
    parser.add_argument("--no-speed", action="store_true", help="coverage figures only")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    if args.device in (None, "cpu") and not args.no_speed:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            rows += _speed_rows(args.quick, threads, "cpu")
    if not args.no_speed and (args.device == "cuda" or (args.device is None and torch.cuda.is_available())):
        rows += _speed_rows(args.quick, torch.get_num_threads(), "cuda")
    if not args.no_coverage:
        torch.set_num_threads(1)  # a shared 2-core machine: one thread keeps the run's wall time predictable
        rows += _coverage_rows(args.quick)
    for name, value, unit in rows:
        print(f"{name:95s} {value:12.4g} {unit}")
    return rows


if __name__ == "__main__":
    main()
