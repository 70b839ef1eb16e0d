"""Training throughput per model kind (CPU, paper batch sizes) and the speed-up of 2 DDP workers over 1.

Per-kind figures time optimizer steps in this process with one torch thread (what one Ray Train worker
with one CPU gets). The DDP figures train one LayerEnergyFlow member through `train_ensemble` with
1 and then 2 workers and compare the last epoch's events/s, so worker start-up is not counted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import torch

from caloray.config import from_dict
from caloray.geometry import get_geometry
from caloray.models import build
from caloray.runtime import init_ray
from caloray.train import TrainConfig, train_ensemble

Row = tuple[str, float, str]

#: (kind, geometry, batch size, where the batch size comes from)
KINDS = (
    ("layer-energy-flow", "ecal-hcal", 200, "Flow-I, MLE-calibration paper app. A"),
    ("energy-regressor", "ecal-hcal", 200, "Flow-I batch, same paper's DNN baseline"),
    ("voxel-flow", "ds1-photons", 256, "INN, higher-dim. thesis table"),
    ("shower-vae", "ds1-photons", 256, "same thesis, same batch"),
)


def synthetic_showers(n: int, n_voxels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sparse positive voxel energies (MeV) summing to ~60 % of E_inc ∈ [1, 100] GeV."""
    rng = np.random.default_rng(seed)
    energies = rng.uniform(1e3, 1e5, n)
    showers = rng.dirichlet(np.full(n_voxels, 0.05), n) * (0.6 * energies[:, None])
    return showers.astype(np.float32), energies


def step_throughput(kind: str, geometry: str, batch_size: int, steps: int) -> float:
    """Training events/s of `kind` (paper-default constructor) on one CPU thread."""
    voxel_layer = get_geometry(geometry).voxel_layer.tolist()
    torch.manual_seed(0)
    model = build(kind, {"voxel_layer": voxel_layer})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    showers, energies = synthetic_showers(4 * batch_size, len(voxel_layer))
    batches = [
        {
            "showers": torch.from_numpy(showers[i : i + batch_size]),
            "incident_energies": torch.from_numpy(energies[i : i + batch_size]).float(),
        }
        for i in range(0, len(showers), batch_size)
    ]

    def step(batch: dict[str, torch.Tensor]) -> None:
        optimizer.zero_grad()
        model.loss(batch).backward()
        optimizer.step()

    step(batches[0])  # warm-up
    started = time.perf_counter()
    for i in range(steps):
        step(batches[i % len(batches)])
    return steps * batch_size / (time.perf_counter() - started)


def ddp_throughput(
    dataset: ray.data.Dataset | None,
    num_workers: int,
    epochs: int,
    output_dir: Path,
    *,
    batch_size: int = 200,
    use_gpu: bool = False,
    paths: list[str] | None = None,
    model_kwargs: dict[str, object] | None = None,
    validation_fraction: float = 0.1,
) -> float:
    """Last-epoch training events/s of one LayerEnergyFlow member (ecal-hcal) on `num_workers` Ray Train workers.

    The rows come from `dataset`, or, when it is None, from the shower files `paths` (read as `caloray train`
    reads them). `batch_size` is per worker (DDP). The figure is the loop's own `train_events_per_s`: training
    rows of all workers over the slowest worker's training pass, so worker start-up, validation and
    checkpointing are not counted, nor (with epochs ≥ 2) first-epoch warm-up.
    """
    config = from_dict(
        TrainConfig,
        {
            "model": {"kind": "layer-energy-flow", "kwargs": dict(model_kwargs or {})},
            "data": {"paths": list(paths or []), "geometry": "ecal-hcal", "validation_fraction": validation_fraction},
            "epochs": epochs,
            "batch_size": batch_size,
            "checkpoint_every": epochs,
            "ensemble": {"members": 1, "num_workers": num_workers, "use_gpu": use_gpu},
            "output_dir": str(output_dir),
            "tracking": {"enabled": False},
        },
    )
    result = train_ensemble(config, dataset)
    return result.members[0].history[-1]["train_events_per_s"]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps and rows")
    args = parser.parse_args(argv)
    steps = 3 if args.quick else 20
    n_rows, epochs = (4_000, 2) if args.quick else (20_000, 3)

    rows: list[Row] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for kind, geometry, batch_size, _source in KINDS:
            rate = step_throughput(kind, geometry, batch_size, steps)
            rows.append((f"{kind} train step, {geometry}, batch {batch_size}, 1 CPU thread", rate, "events/s"))
    finally:
        torch.set_num_threads(threads)

    init_ray(num_cpus=2)
    ray.data.DataContext.get_current().enable_progress_bars = False
    showers, energies = synthetic_showers(n_rows, get_geometry("ecal-hcal").n_voxels)
    dataset = ray.data.from_items(
        [{"showers": s, "incident_energies": float(e)} for s, e in zip(showers, energies, strict=True)],
        override_num_blocks=8,
    ).materialize()
    with tempfile.TemporaryDirectory() as tmp:
        one = ddp_throughput(dataset, 1, epochs, Path(tmp) / "w1")
        two = ddp_throughput(dataset, 2, epochs, Path(tmp) / "w2")
    rows += [
        ("layer-energy-flow Ray Train, 1 worker, batch 200", one, "events/s"),
        ("layer-energy-flow Ray Train DDP, 2 workers, batch 200 each", two, "events/s"),
        ("DDP speed-up 2 workers / 1 worker", two / one, "×"),
    ]
    for name, value, unit in rows:
        print(f"{name:65s} {value:10.3f} {unit}")
    return rows


if __name__ == "__main__":
    main()
