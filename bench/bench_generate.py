"""Generation speed: full showers/s of every model set-up that generates showers, and the Ray pipeline's
1 → 2 actor speed-up.

Set-ups (untrained weights: speed does not depend on them):
- layer-energy-flow with one voxel per layer (the six ECAL+HCAL layer energies as a 6-voxel shower);
- Flow-I → Flow-II chain (LayerEnergyFlow → VoxelFlow) on ds1-photons (368 voxels), the CaloFlow MAF teacher
  whose sampling runs one MADE pass per voxel (quick mode uses 2 blocks × 64 hidden instead of 8 × 512);
- ShowerVAE on ECAL+HCAL (1008 voxels), thesis architecture.
A Flow-I alone on ECAL+HCAL samples 6 layer energies, not the 1008 voxels, so it is not a shower generator.
CPU figures use one torch thread (what one Ray actor with one CPU gets); GPU figures (float32) are added when
CUDA is available. The pipeline figures run `caloray.generate.generate` (VAE, validation off) with 1 and 2 actors
and compare the showers/s of the shard phase (actor start-up included, MLflow and validation excluded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from caloray.generate import GenerationConfig, ShowerSampler, generate, generate_showers
from caloray.geometry import get_geometry
from caloray.models import LayerEnergyFlow, ShowerVAE, VoxelFlow, save_model

Row = tuple[str, float, str]


def _vae() -> ShowerVAE:
    return ShowerVAE(get_geometry("ecal-hcal").voxel_layer.tolist())


def _layer_voxels() -> ShowerSampler:
    return ShowerSampler(LayerEnergyFlow(list(range(get_geometry("ecal-hcal").n_layers))))


def _chain(quick: bool) -> ShowerSampler:
    voxel_layer = get_geometry("ds1-photons").voxel_layer.tolist()
    flow2 = VoxelFlow(voxel_layer, transforms=2, hidden_features=(64,)) if quick else VoxelFlow(voxel_layer)
    return ShowerSampler(flow2, LayerEnergyFlow(voxel_layer))


def _rate(sampler: ShowerSampler, n: int, batch: int, device: str) -> float:
    """Showers/s of `generate_showers` for n log-uniform 1–100 GeV energies (after one warm-up batch)."""
    sampler.to(device)
    energies = np.exp(np.random.default_rng(0).uniform(np.log(1e3), np.log(1e5), n)).astype(np.float32)
    generate_showers(sampler, energies[:min(batch, n)], 0, batch, device)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    generate_showers(sampler, energies, 1, batch, device)
    if device == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def _pipeline_rate(model_path: Path, out: Path, n: int, shard: int, actors: int) -> float:
    config = GenerationConfig(model=str(model_path), n_showers=n, shard_size=shard, out=str(out),
                              energies="log-uniform:1GeV-100GeV", validate_n=0, actors=actors, use_gpu=False,
                              batch_size=shard)
    return generate(config, progress=False).showers_per_s


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    quick = args.quick
    # (name, make, CPU showers, CPU batch, GPU showers, GPU batch)
    setups: list[tuple[str, Callable[[], ShowerSampler], int, int, int, int]] = [
        ("layer-energy-flow, 6 layer voxels (ECAL+HCAL layer sums)", _layer_voxels,
         2000 if quick else 20_000, 1000, 100_000, 20_000),
        (f"Flow-I → Flow-II chain, ds1-photons 368 voxels{' (2×64 MADE, quick)' if quick else ''}",
         lambda: _chain(quick), 8 if quick else 4, 8, 128 if quick else 512, 512),
        ("shower-vae, ECAL+HCAL 1008 voxels", lambda: ShowerSampler(_vae()),
         2000 if quick else 20_000, 1000, 100_000, 20_000),
    ]
    rows: list[Row] = []
    for name, make, n, batch, _, _ in setups:
        rows.append((f"generate {name}, CPU 1 thread", _rate(make(), n, batch, "cpu"), "showers/s"))
    if torch.cuda.is_available():
        for name, make, _, _, n, batch in setups:
            rows.append((f"generate {name}, GPU float32", _rate(make(), n, batch, "cuda"), "showers/s"))

    import ray

    started = not ray.is_initialized()
    if started:  # 3 logical CPUs: up to 2 actors plus one spare for the driver
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    n, shard = (8000, 1000) if args.quick else (80_000, 5000)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model_path = save_model(_vae(), root / "vae.pt")
            _pipeline_rate(model_path, root / "warm", 2 * shard, shard, 1)
            one = _pipeline_rate(model_path, root / "one", n, shard, 1)
            two = _pipeline_rate(model_path, root / "two", n, shard, 2)
    finally:
        if started:
            ray.shutdown()
    rows += [("generate pipeline (shower-vae ECAL+HCAL, CPU) 1 actor", one, "showers/s"),
             ("generate pipeline (shower-vae ECAL+HCAL, CPU) 2 actors", two, "showers/s"),
             ("generate pipeline speed-up 1 → 2 actors", two / one, "×")]
    for name, value, unit in rows:
        print(f"{name:75s} {value:12.4g} {unit}")
    return rows


if __name__ == "__main__":
    main()
