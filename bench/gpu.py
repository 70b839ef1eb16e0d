"""One GPU benchmark run (`make bench-gpu`): the throughput figures of issue 14, to BENCHMARKS.md.

    python -m bench.gpu                          # CUDA; exit 2 with one line when no GPU is visible
    python -m bench.gpu --device cpu --dry-run   # tiny sizes on the CPU, nothing recorded (a test runs it)

Figures (untrained or briefly trained weights: speed does not depend on the fit, except the MLE, whose
ensemble is trained a little so that its likelihoods have realistic widths):
- generation ms/shower at batch 10,000 for every model kind of `caloray.models.registry.MODEL_KINDS` that
  `caloray.generate.ShowerSampler` accepts (alone, or as Flow-II behind a Flow-I), on ds1-photons and ds2:
  the list follows the registry, so kinds added there appear here without edits;
- MLE calibration showers/s of a 10-member Flow-I ensemble, and the time 1M showers would take (goal < 60 s);
- null-construction replicates/s at d = 6480 (bootstrap SKS, mean-KS);
- training events/s of every trainable kind of the registry on one device (optimizer steps in this process);
- training events/s of one Flow-I member through caloray's own path (`train_ensemble` on Ray Train, showers
  read from a file in a temp folder) on 1 GPU and with DDP on 2 GPUs, same model and per-GPU batch, and the
  ratio; from the loop's own `train_events_per_s` of the second epoch (no start-up or warm-up). Needs
  2 visible GPUs: with fewer, a row says "not measured" and how many are visible. The dry run trains the
  same way with 1 and 2 CPU workers (gloo);
- super-resolution showers/s (ds2, scenario A).
A figure whose 16-shower probe predicts more than `--max-seconds` for the full size is measured on fewer
showers; the row says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.record import append_markdown

Row = tuple[str, float, str]

GEOMETRIES = ("ds1-photons", "ds2")
#: A generation probe (16 showers) above this many multiply-adds is not run (hours on any device).
MAX_PROBE_MACS = 2e13


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _seconds(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _small(cls: type) -> dict[str, object]:
    """Constructor overrides for a dry run: one block, 16 hidden units, where the constructor has them."""
    import inspect

    parameters = inspect.signature(cls).parameters
    small: dict[str, object] = {"transforms": 1, "hidden_features": (16,), "hidden": (16,), "latent_dim": 4}
    return {key: value for key, value in small.items() if key in parameters}


def _samplers(geometry: str, dry_run: bool) -> list[tuple[str, object]]:
    """(name, ShowerSampler) of every registry kind that generates full showers on `geometry`
    (default constructors; tiny ones in a dry run)."""
    from caloray.errors import CalorayError
    from caloray.generate import ShowerSampler
    from caloray.geometry import get_geometry
    from caloray.models import LayerEnergyFlow, build
    from caloray.models.registry import MODEL_KINDS

    voxel_layer = get_geometry(geometry).voxel_layer.tolist()
    out = []
    for kind in sorted(MODEL_KINDS):
        if kind == "ensemble":
            continue
        torch.manual_seed(0)
        try:
            model = build(kind, {"voxel_layer": voxel_layer} | (_small(MODEL_KINDS[kind]) if dry_run else {}))
        except CalorayError:
            continue  # not built from a voxel map (e.g. super-resolution, timed below)
        flow1 = LayerEnergyFlow(voxel_layer, **(_small(LayerEnergyFlow) if dry_run else {}))
        for layer_model in (None, flow1):
            try:
                sampler = ShowerSampler(model, layer_model)
            except CalorayError:
                continue
            out.append((sampler.description, sampler))
            break
    return out


def bench_generation(device: str, batch: int, max_seconds: float, dry_run: bool) -> list[Row]:
    from caloray.generate import generate_showers

    rows: list[Row] = []
    # A dry run keeps to ds1-photons: autoregressive sampling over ds2's 6480 voxels takes minutes even tiny.
    for geometry in GEOMETRIES[:1] if dry_run else GEOMETRIES:
        for name, sampler in _samplers(geometry, dry_run):
            if sampler.mode == "chain":
                # A MAF samples with one full MADE pass per voxel: ~parameters × voxels multiply-adds per shower.
                macs = sum(p.numel() for p in sampler.model.parameters()) * sampler.n_voxels
                if macs * min(16, batch) > MAX_PROBE_MACS:
                    rows.append((f"generate {name} {geometry} [skipped: ~{macs:.1e} multiply-adds per shower, "
                                 "autoregressive sampling]", float("nan"), "ms/shower"))
                    print(f"  {rows[-1][0]}", flush=True)
                    continue
            sampler.to(device)
            energies = np.exp(np.random.default_rng(0).uniform(np.log(1e3), np.log(1e5), batch)).astype(np.float32)
            probe = min(16, batch)
            per_shower = _seconds(lambda e=energies[:probe], s=sampler, k=probe: generate_showers(s, e, 0, k, device),
                                  device) / probe
            n, note = batch, f"batch {batch}"
            if per_shower * batch > max_seconds:
                n = max(probe, int(max_seconds / per_shower))
                note = f"batch {n} (batch {batch} would take ~{per_shower * batch:.0f} s)"
            seconds = _seconds(lambda e=energies[:n], s=sampler, k=n: generate_showers(s, e, 1, k, device), device)
            rows.append((f"generate {name} {geometry} [{note}]", 1e3 * seconds / n, "ms/shower"))
            print(f"  {rows[-1][0]}: {rows[-1][1]:.4g} ms/shower", flush=True)
            sampler.to("cpu")
    return rows


def bench_mle(device: str, n_showers: int, train_steps: int) -> list[Row]:
    from bench.bench_calibrate import ENERGY_MAX_MEV, ENERGY_MIN_MEV, _ensemble
    from caloray.calibrate import MLESettings
    from caloray.calibrate.engine import calibrate_features, shower_features
    from caloray.sim import SimConfig, simulate_batch

    ensemble = _ensemble(10, train_steps, n_train=4000 if train_steps > 50 else 400)
    config = SimConfig(geometry="ecal-hcal", particle="pion", prior="uniform", energy_min_mev=ENERGY_MIN_MEV,
                       energy_max_mev=ENERGY_MAX_MEV, n_showers=min(n_showers, 20_000), seed=3)
    _, showers = simulate_batch(config, np.random.default_rng(3), config.n_showers)
    features = shower_features(ensemble, torch.as_tensor(showers, dtype=torch.float32))
    # More showers than simulated: repeat the simulated ones (the engine's cost does not depend on order).
    features = features.repeat((n_showers + len(features) - 1) // len(features), 1)[:n_showers].to(device)
    ensemble = ensemble.to(device)
    settings = MLESettings(n_scan=24, rtol=1e-6)
    calibrate_features(ensemble, features[:64], ENERGY_MIN_MEV, ENERGY_MAX_MEV, settings)  # warm-up
    seconds = _seconds(lambda: calibrate_features(ensemble, features, ENERGY_MIN_MEV, ENERGY_MAX_MEV, settings),
                       device)
    rate = n_showers / seconds
    print(f"  MLE 10×Flow-I: {rate:.4g} showers/s over {n_showers}", flush=True)
    return [(f"MLE calibration, 10-member Flow-I ensemble [{n_showers} showers]", rate, "showers/s"),
            ("MLE calibration: 1M showers × 10 flows (goal < 60 s)", 1e6 / rate, "s")]


def bench_null(device: str, n_rows: int, n_iter: int) -> list[Row]:
    from caloray.validate import ExperimentDesign, null_and_alternative

    d = 6480
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((n_rows, d), dtype=np.float32)
    candidate = rng.standard_normal((n_rows, d), dtype=np.float32) + np.float32(0.01)
    design = ExperimentDesign(batch_size=n_rows, n_iter=n_iter, n_slices=100, seed=0)
    rows: list[Row] = []
    for statistic in ("sks", "mean-ks"):
        null_and_alternative(reference[:64], candidate[:64], statistic,
                             ExperimentDesign(batch_size=64, n_iter=2, n_slices=100, seed=0), device=device)
        seconds = _seconds(lambda s=statistic: null_and_alternative(reference, candidate, s, design, device=device),
                           device)
        rows.append((f"null construction {statistic} d={d} batch={n_rows} [{2 * n_iter} replicates incl. pools]",
                     2 * n_iter / seconds, "replicates/s"))
        print(f"  {rows[-1][0]}: {rows[-1][1]:.4g} replicates/s", flush=True)
    return rows


def bench_training(device: str, batch: int, steps: int, dry_run: bool) -> list[Row]:
    from bench.bench_train import KINDS, synthetic_showers
    from caloray.geometry import get_geometry
    from caloray.models import build
    from caloray.models.registry import MODEL_KINDS

    rows: list[Row] = []
    for kind, geometry, _, _ in KINDS:
        voxel_layer = get_geometry(geometry).voxel_layer.tolist()
        torch.manual_seed(0)
        small = _small(MODEL_KINDS[kind]) if dry_run else {}
        model = build(kind, {"voxel_layer": voxel_layer} | small).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        showers, energies = synthetic_showers(batch, len(voxel_layer))
        data = {"showers": torch.from_numpy(showers).to(device),
                "incident_energies": torch.from_numpy(energies).float().to(device)}

        def step(model=model, optimizer=optimizer, data=data) -> None:
            optimizer.zero_grad()
            model.loss(data).backward()
            optimizer.step()

        step()  # warm-up
        seconds = _seconds(lambda step=step: [step() for _ in range(steps)], device)
        rows.append((f"training {kind} {geometry} batch {batch} (1 device)", steps * batch / seconds, "events/s"))
        print(f"  {rows[-1][0]}: {rows[-1][1]:.4g} events/s", flush=True)
    return rows


#: The DDP figure's model and data: Flow-I (LayerEnergyFlow) on ecal-hcal, as `bench.bench_train` trains it.
DDP_KIND, DDP_GEOMETRY = "layer-energy-flow", "ecal-hcal"


def _ddp_rows(n_train: int, workers: int) -> tuple[int, float]:
    """(rows in the file, validation fraction) so that ~`n_train` rows train and every worker gets ≥ 1
    validation row (Ray's split rounds, so the training count can be off by one)."""
    n_validation = max(workers, n_train // 19)  # ~5 %: validation is not timed, keep it cheap
    return n_train + n_validation, n_validation / (n_train + n_validation)


def bench_ddp(device: str, batch: int, steps: int, dry_run: bool) -> list[Row]:
    """Training events/s of one ensemble member through caloray's own training path (`train_ensemble` on
    Ray Train, data read from a shower file in a temp folder) with 1 and with 2 workers, and their ratio.

    On CUDA the workers get one GPU each (NCCL); on the CPU (dry run) two 1-CPU workers (gloo). Each epoch
    holds 2 × `steps` × `batch` training rows: `steps` steps per worker with 2 workers, twice as many with 1,
    at the same per-worker batch. The figure is the loop's own `train_events_per_s` of the second (last)
    epoch, so Ray and worker start-up, CUDA/NCCL warm-up, validation and checkpointing are excluded.
    Fewer than 2 visible GPUs on a CUDA run: one "not measured" row.
    """
    import tempfile

    import ray

    from bench.bench_train import ddp_throughput, synthetic_showers
    from caloray.geometry import get_geometry
    from caloray.io import write_showers
    from caloray.models.registry import MODEL_KINDS
    from caloray.runtime import init_ray

    use_gpu = device.startswith("cuda")
    if use_gpu and torch.cuda.device_count() < 2:
        row = (f"training DDP on 2 GPUs: not measured, {torch.cuda.device_count()} GPU(s) visible",
               float("nan"), "events/s")
        print(f"  {row[0]}", flush=True)
        return [row]
    started_ray = not ray.is_initialized()
    # A dry run's Ray holds exactly the 2 CPU workers; a GPU node keeps its own CPU and GPU counts.
    init_ray(num_cpus=2 if not use_gpu else None)
    ray.data.DataContext.get_current().enable_progress_bars = False
    if use_gpu:
        torch.cuda.empty_cache()  # the workers share GPU 0 with this process's cached blocks
    small = _small(MODEL_KINDS[DDP_KIND]) if dry_run else {}
    model_kwargs = {key: list(value) if isinstance(value, tuple) else value for key, value in small.items()}
    n_rows, validation_fraction = _ddp_rows(2 * steps * batch, workers=2)
    showers, energies = synthetic_showers(n_rows, get_geometry(DDP_GEOMETRY).n_voxels)
    one, two = ("GPU", "GPUs") if use_gpu else ("CPU worker", "CPU workers (gloo)")
    rates: dict[int, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="caloray-bench-ddp-") as tmp:
            path = write_showers(Path(tmp) / "showers.h5", showers, energies, geometry=DDP_GEOMETRY,
                                 compression=None)
            for workers in (1, 2):
                rates[workers] = ddp_throughput(
                    None, workers, 2, Path(tmp) / f"w{workers}", batch_size=batch, use_gpu=use_gpu,
                    paths=[str(path)], model_kwargs=model_kwargs, validation_fraction=validation_fraction)
    finally:
        if started_ray:
            ray.shutdown()
    name = f"training {DDP_KIND} {DDP_GEOMETRY} Ray Train"
    rows: list[Row] = [
        (f"{name}, 1 {one}, batch {batch} [{2 * steps} steps/epoch]", rates[1], "events/s"),
        (f"{name} DDP, 2 {two}, batch {batch} each [{steps} steps/epoch each]", rates[2], "events/s"),
        (f"{name} DDP speed-up 2 {two} / 1", rates[2] / rates[1], "×"),
    ]
    for label, value, row_unit in rows:
        print(f"  {label}: {value:.4g} {row_unit}", flush=True)
    return rows


def bench_superres(device: str, n_showers: int, batch: int) -> list[Row]:
    from bench.bench_superres import _model, _rate, _showers

    showers, energies = _showers(n_showers)
    rate = _rate(_model(quick=n_showers < 1000).to(device), showers, energies, device, batch)
    print(f"  super-resolution ds2 A: {rate:.4g} showers/s", flush=True)
    return [(f"super-resolution ds2 scenario A [{n_showers} showers, batch {batch}]", rate, "showers/s")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, nothing recorded (keeps the script alive)")
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to BENCHMARKS.md")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="time cap of one generation figure")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench.gpu: no CUDA device visible (torch.cuda.is_available() is False); "
              "use --device cpu --dry-run for a CPU check", file=sys.stderr)
        return 2
    if args.dry_run:
        sizes = {"batch": 2, "mle": 16, "steps": 2, "null_rows": 32, "null_iter": 2, "sr": 8, "train_steps": 5,
                 "ddp_steps": 2}
    else:
        sizes = {"batch": 10_000, "mle": 200_000, "steps": 20, "null_rows": 10_000, "null_iter": 16, "sr": 10_000,
                 "train_steps": 200, "ddp_steps": 25}
    device = args.device
    print(f"bench.gpu on {device}{' (dry run)' if args.dry_run else ''}", flush=True)
    rows = bench_generation(device, sizes["batch"], args.max_seconds, args.dry_run)
    rows += bench_mle(device, sizes["mle"], sizes["train_steps"])
    rows += bench_null(device, sizes["null_rows"], sizes["null_iter"])
    rows += bench_training(device, 8 if args.dry_run else 1024, sizes["steps"], args.dry_run)
    rows += bench_ddp(device, 8 if args.dry_run else 1024, sizes["ddp_steps"], args.dry_run)
    rows += bench_superres(device, sizes["sr"], min(sizes["sr"], 1000))
    if not (args.dry_run or args.no_record):
        append_markdown(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", f"gpu ({device})", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
