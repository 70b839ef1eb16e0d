"""1 → 2 worker speed-up of every Ray pipeline (simulate, ingest, generate, calibrate, superres, validate).

Each pipeline runs the same work with 1 and with 2 workers in `repeats` pairs (order alternating, so load drift
does not favour one side); the suite prints the median speed-up with its min–max, the CPU each side obtained
(CPU seconds of the Ray worker processes over wall seconds, from /proc: ≈1 and ≈2 when nothing else runs), and
the ceiling: the same work units run by 1 and 2 plain forked processes (no Ray). A speed-up well under the
ceiling is Ray's overhead; a ceiling well under 2 is the machine (other load, memory bandwidth, too little work).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

Row = tuple[str, float, str]
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    """Work per pipeline: showers simulated, rows read, showers generated/calibrated/upsampled, replicates."""

    simulate: int
    ingest: int
    generate: int
    calibrate: int
    superres: int
    validate_iter: int
    repeats: int


FULL = Sizes(simulate=4_000, ingest=24_000, generate=24_000, calibrate=1_600, superres=192, validate_iter=256,
             repeats=3)
QUICK = Sizes(simulate=1_000, ingest=6_000, generate=6_000, calibrate=400, superres=48, validate_iter=64, repeats=3)
TINY = Sizes(simulate=500, ingest=2_000, generate=1_000, calibrate=80, superres=8, validate_iter=32, repeats=1)


# ----- CPU obtained ----------------------------------------------------------------------------------------
def _ray_worker_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of every Ray worker process descended from this driver, by pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    cpu: dict[int, float] = {}
    for pid in mine:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            worker = cmdline.startswith(b"ray::") or b"default_worker" in cmdline  # workers retitle themselves
            if not worker or b"Agent" in cmdline.split(b"\0", 1)[0]:  # the node's agents are not workers
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return cpu


def _timed_ray(run: Callable[[], object], every_s: float = 0.2) -> tuple[float, float]:
    """(wall s, Ray worker CPU s) of one call. Workers are sampled every `every_s` while it runs: actor pools
    end with their run, and a process's CPU time is gone from /proc once it exits (≤ every_s of it is missed)."""
    before = _ray_worker_cpu()
    seen = dict(before)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            seen.update(_ray_worker_cpu())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        run()
    finally:
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    seen.update(_ray_worker_cpu())
    return wall, sum(cpu - before.get(pid, 0.0) for pid, cpu in seen.items())


#: Longest a plain-process run may take (a stuck forked child otherwise hangs the suite).
PLAIN_TIMEOUT_S = 300
#: The unit function of the plain-process run: forked children inherit it (closures do not pickle).
_UNIT: Callable[[object], object] | None = None


def _call_unit(arg: object) -> object:
    assert _UNIT is not None
    return _UNIT(arg)


def _timed_plain(unit: Callable[[object], object], units: Sequence[object], workers: int) -> tuple[float, float]:
    """(wall s, children's CPU s) of `unit` over `units` on `workers` forked processes."""
    global _UNIT
    _UNIT = unit
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        # forking a driver that runs Ray's threads can leave a child stuck on a lock copied mid-use: fail loudly
        pool.map_async(_call_unit, list(units), chunksize=1).get(timeout=PLAIN_TIMEOUT_S)
        pool.close()  # let the children exit on their own (terminate() makes each print Ray's SIGTERM trace)
        pool.join()
    except multiprocessing.TimeoutError:
        pool.terminate()
        raise RuntimeError(f"bench scaling: plain-process run did not finish in {PLAIN_TIMEOUT_S} s "
                           "(a forked child is stuck; rerun)") from None
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _pairs(one: Callable[[], tuple[float, float]], two: Callable[[], tuple[float, float]],
           repeats: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """`repeats` (1-worker, 2-worker) measurements, alternating which side runs first."""
    out = []
    for r in range(repeats):
        if r % 2:
            b = two()
            a = one()
        else:
            a = one()
            b = two()
        out.append((a, b))
    return out


def _rows(name: str, ray_pairs, plain_pairs) -> list[Row]:
    rows: list[Row] = []
    for label, pairs in (("Ray", ray_pairs), ("plain processes (ceiling)", plain_pairs)):
        speedups = [a[0] / b[0] for a, b in pairs]
        cores_1 = statistics.median(a[1] / a[0] for a, _ in pairs)
        cores_2 = statistics.median(b[1] / b[0] for _, b in pairs)
        wall_1 = statistics.median(a[0] for a, _ in pairs)
        rows += [(f"{name}: {label} 1 → 2 workers speed-up, median of {len(pairs)} pairs "
                  f"(min {min(speedups):.2f}, max {max(speedups):.2f}; 1 worker {wall_1:.2f} s)",
                  statistics.median(speedups), "×"),
                 (f"{name}: {label} CPU obtained, 1 worker (CPU s / wall s)", cores_1, "cores"),
                 (f"{name}: {label} CPU obtained, 2 workers (CPU s / wall s)", cores_2, "cores")]
    return rows


# ----- the six pipelines ------------------------------------------------------------------------------------
_RUNS = itertools.count()


def _fresh(folder: Path) -> Path:
    """A new empty folder next to `folder` for one run (a pipeline may keep files open in the previous one, e.g.
    its MLflow store); the previous runs' folders are removed."""
    for old in folder.parent.glob(f"{folder.name}-*"):
        shutil.rmtree(old, ignore_errors=True)
    fresh = folder.parent / f"{folder.name}-{next(_RUNS)}"
    fresh.mkdir(parents=True)
    return fresh


def bench_simulate(root: Path, n: int, repeats: int) -> list[Row]:
    from caloray.sim import SimConfig, run_shards
    from caloray.sim.run import write_shard

    config = SimConfig.preset("ds2", n_showers=n, seed=1)  # default shard size (several shards per worker)
    out = root / "sim"

    def ray_run(workers: int) -> tuple[float, float]:
        folder = _fresh(out)
        return _timed_ray(lambda: run_shards(config, folder, progress=False, actors=workers))

    def plain(workers: int) -> tuple[float, float]:
        folder = _fresh(out)
        return _timed_plain(lambda i: write_shard(config, i, folder), range(config.n_shards), workers)

    ray_run(2)  # warm-up: worker processes and imports
    return _rows(f"simulate ds2 {n} showers, {config.n_shards} shards",
                 _pairs(lambda: ray_run(1), lambda: ray_run(2), repeats),
                 _pairs(lambda: plain(1), lambda: plain(2), repeats))


def _block_sum(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"sum": np.array([batch["showers"].sum() + batch["incident_energies"].sum()])}


def bench_ingest(root: Path, n: int, repeats: int) -> list[Row]:
    from bench.bench_io import _make_file
    from caloray.io import read_showers

    path = _make_file(root / "ingest.h5", n, 6480)
    rows_per_block = 1000
    ranges = [(lo, min(lo + rows_per_block, n)) for lo in range(0, n, rows_per_block)]

    def ray_run(workers: int) -> tuple[float, float]:
        def run() -> float:
            ds = read_showers(path, rows_per_block=rows_per_block, override_num_blocks=len(ranges), concurrency=workers)
            sums = ds.map_batches(_block_sum, batch_size=None, batch_format="numpy", zero_copy_batch=True)
            return sum(float(s) for s in sums.to_pandas()["sum"])

        return _timed_ray(run)

    def read(bounds: tuple[int, int]) -> float:
        with h5py.File(path, "r") as f:
            return float(f["showers"][bounds[0]:bounds[1]].sum() + f["incident_energies"][bounds[0]:bounds[1]].sum())

    ray_run(2)
    return _rows(f"ingest ds2 {n} rows (gzip HDF5, {len(ranges)} blocks)",
                 _pairs(lambda: ray_run(1), lambda: ray_run(2), repeats),
                 _pairs(lambda: _timed_plain(read, ranges, 1), lambda: _timed_plain(read, ranges, 2), repeats))


def bench_generate(root: Path, n: int, repeats: int) -> list[Row]:
    from bench.bench_generate import _vae
    from caloray.generate import GenerationConfig, ShowerSampler, generate, generate_showers
    from caloray.models import save_model

    torch.manual_seed(0)
    model = _vae()
    model_path = save_model(model, root / "vae.pt")
    shard = max(250, n // 8)
    sampler = ShowerSampler(model)
    energies = np.exp(np.random.default_rng(0).uniform(np.log(1e3), np.log(1e5), n)).astype(np.float32)
    chunks = [energies[lo:lo + shard] for lo in range(0, n, shard)]

    def ray_run(workers: int) -> tuple[float, float]:
        config = GenerationConfig(model=str(model_path), n_showers=n, shard_size=shard, out=str(_fresh(root / "gen")),
                                  energies="log-uniform:1GeV-100GeV", validate_n=0, actors=workers, use_gpu=False,
                                  batch_size=shard)
        return _timed_ray(lambda: generate(config, progress=False))

    def unit(chunk: np.ndarray) -> int:
        torch.set_num_threads(1)
        return len(generate_showers(sampler, chunk, 0, shard, "cpu")[0])

    ray_run(2)
    return _rows(f"generate shower-vae ECAL+HCAL {n} showers, {len(chunks)} shards",
                 _pairs(lambda: ray_run(1), lambda: ray_run(2), repeats),
                 _pairs(lambda: _timed_plain(unit, chunks, 1), lambda: _timed_plain(unit, chunks, 2), repeats))


def bench_calibrate(root: Path, n: int, repeats: int) -> list[Row]:
    from caloray.calibrate import MLESettings
    from caloray.calibrate.engine import calibrate_showers
    from caloray.geometry import get_geometry
    from caloray.io import read_shower_rows, write_showers
    from caloray.models import LayerEnergyFlow, load_model, save_model
    from caloray.workflows.calibrate import CalibrationRun, ModelReference, calibrate_files

    geometry = get_geometry("ecal-hcal")
    rng = np.random.default_rng(0)
    path = write_showers(root / "calib-in.h5", rng.exponential(20.0, (n, geometry.n_voxels)).astype(np.float32),
                         rng.uniform(5e3, 5e4, n), geometry="ecal-hcal")
    torch.manual_seed(0)
    model_path = save_model(LayerEnergyFlow(geometry.voxel_layer.tolist(), transforms=2, hidden_features=(16,)),
                            root / "calib-flow.pt")
    per_unit = max(20, n // 8)

    def run_for(workers: int) -> CalibrationRun:
        return CalibrationRun(inputs=(str(path),), out_dir=str(_fresh(root / "calib")), energy_min_mev=1e3,
                              energy_max_mev=1e5, rows_per_unit=per_unit, mle=MLESettings(n_scan=24, rtol=1e-5),
                              actors=workers)

    def ray_run(workers: int) -> tuple[float, float]:
        run = run_for(workers)
        return _timed_ray(lambda: calibrate_files(ModelReference(str(model_path)), run))

    settings = run_for(1)
    model = load_model(model_path).double().eval()

    def unit(bounds: tuple[int, int]) -> int:
        torch.set_num_threads(1)
        rows = read_shower_rows(str(path), *bounds)["showers"]
        columns = calibrate_showers(model, rows, settings.energy_min_mev, settings.energy_max_mev, settings.mle,
                                    batch_size=settings.batch_size, generator=torch.Generator().manual_seed(bounds[0]))
        return len(columns["e_pred_mev"])

    ranges = [(lo, min(lo + per_unit, n)) for lo in range(0, n, per_unit)]
    ray_run(2)
    return _rows(f"calibrate layer flow ECAL+HCAL {n} showers, {len(ranges)} units",
                 _pairs(lambda: ray_run(1), lambda: ray_run(2), repeats),
                 _pairs(lambda: _timed_plain(unit, ranges, 1), lambda: _timed_plain(unit, ranges, 2), repeats))


def bench_superres(root: Path, n: int, repeats: int) -> list[Row]:
    from bench.bench_superres import _model, _showers
    from caloray.io import write_showers
    from caloray.models import save_model
    from caloray.superres import upsample_reference
    from caloray.superres.pipeline import upsample_files

    n_files, batch = 4, 8
    per_file = max(1, n // n_files)
    model = _model(True)
    showers, energies = _showers(n_files * per_file)
    model_path = save_model(model, root / "sr.pt")
    inputs = [write_showers(root / f"sr-in-{i}.h5", showers[i * per_file:(i + 1) * per_file],
                            energies[i * per_file:(i + 1) * per_file], geometry="ds2") for i in range(n_files)]

    def ray_run(workers: int) -> tuple[float, float]:
        out = _fresh(root / "sr")
        return _timed_ray(lambda: upsample_files(model_path, inputs, out, batch_size=batch, seed=0, actors=workers))

    def unit(i: int) -> int:
        torch.set_num_threads(1)
        x = torch.as_tensor(showers[i * per_file:(i + 1) * per_file])
        e = torch.as_tensor(energies[i * per_file:(i + 1) * per_file])
        for lo in range(0, len(x), batch):
            upsample_reference(model, x[lo:lo + batch], e[lo:lo + batch])
        return len(x)

    ray_run(2)
    return _rows(f"superres ds2 {n_files * per_file} showers (2 × (32, 32) flow), {n_files} files",
                 _pairs(lambda: ray_run(1), lambda: ray_run(2), repeats),
                 _pairs(lambda: _timed_plain(unit, range(n_files), 1), lambda: _timed_plain(unit, range(n_files), 2),
                        repeats))


def bench_validate(root: Path, n_iter: int, repeats: int) -> list[Row]:
    from caloray.validate import ExperimentDesign
    from caloray.validate.pipeline_ray import replicate_values_ray
    from caloray.validate.replicates import auto_chunk_size, pool_chunk, prepare_pools

    rng = np.random.default_rng(0)
    reference, candidate = rng.normal(size=(8_000, 20)), rng.normal(0.05, 1.0, size=(8_000, 20))
    design = ExperimentDesign(batch_size=2_000, n_iter=n_iter, seed=1)
    context = design.context(reference.shape[1])

    def ray_run(workers: int) -> tuple[float, float]:
        return _timed_ray(lambda: replicate_values_ray(reference, candidate, "mean-ks", design, concurrency=workers))

    pools = prepare_pools(torch.as_tensor(reference), torch.as_tensor(candidate), "mean-ks", context,
                          design.batch_size)
    chunk = auto_chunk_size(design, reference.shape[1], pools)
    n_chunks = -(-n_iter // chunk)

    def unit(chunk_index: int) -> int:
        torch.set_num_threads(1)
        return len(pool_chunk(pools, design, context, chunk_index, chunk)[0])

    ray_run(2)
    return _rows(f"validate mean-ks, batch 2000, {n_iter} replicates ({n_chunks} chunks)",
                 _pairs(lambda: ray_run(1), lambda: ray_run(2), repeats),
                 _pairs(lambda: _timed_plain(unit, range(n_chunks), 1), lambda: _timed_plain(unit, range(n_chunks), 2),
                        repeats))


PIPELINES = ("simulate", "ingest", "generate", "calibrate", "superres", "validate")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes, one pair (the suite's own test)")
    parser.add_argument("--pipelines", default=",".join(PIPELINES), help=f"subset of {','.join(PIPELINES)}")
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    torch.set_num_threads(1)

    import ray

    from caloray.runtime import init_ray

    started = not ray.is_initialized()
    if started:  # 3 logical CPUs on 2 cores: up to 2 workers plus one for Ray Data's read/write tasks
        init_ray(num_cpus=3)
    ray.data.DataContext.get_current().enable_progress_bars = False
    load = os.getloadavg()
    rows: list[Row] = [("load average (1 min) at the start; logical CPUs", load[0], f"load; {os.cpu_count()} CPUs")]
    print(f"load average at the start: {load[0]:.2f} (1 min), {load[1]:.2f} (5 min); {os.cpu_count()} CPUs", flush=True)
    runs = {"simulate": lambda r: bench_simulate(r, sizes.simulate, sizes.repeats),
            "ingest": lambda r: bench_ingest(r, sizes.ingest, sizes.repeats),
            "generate": lambda r: bench_generate(r, sizes.generate, sizes.repeats),
            "calibrate": lambda r: bench_calibrate(r, sizes.calibrate, sizes.repeats),
            "superres": lambda r: bench_superres(r, sizes.superres, sizes.repeats),
            "validate": lambda r: bench_validate(r, sizes.validate_iter, sizes.repeats)}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.pipelines.split(","):
                if name not in runs:
                    raise SystemExit(f"bench scaling: unknown pipeline {name!r}; choose from {','.join(PIPELINES)}")
                started_at = time.perf_counter()
                folder = Path(tmp) / name
                folder.mkdir()
                new = runs[name](folder)
                for row_name, value, unit in new:
                    print(f"{row_name:120s} {value:8.3f} {unit}", flush=True)
                print(f"[{name}: {time.perf_counter() - started_at:.1f} s]", flush=True)
                rows += new
    finally:
        if started:
            ray.shutdown()
    rows.append(("load average (1 min) at the end", os.getloadavg()[0], "load"))
    print(f"load average at the end: {rows[-1][1]:.2f} (1 min)", flush=True)
    return rows


if __name__ == "__main__":
    main()
