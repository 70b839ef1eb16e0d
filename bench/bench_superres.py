"""Super-resolution speed: upsampled ds2 showers/s (choice A, oracle, thesis-size flow: 8 MADE+RQS blocks of
2 × 128, float32) on CPU and, when CUDA is available, on the GPU; and the Ray Data upsampling pipeline's
1 → 2 worker (actor) speed-up, both pipeline runs side by side in one process on the same input files.

Showers come from the built-in ds2 electron simulator (log-uniform 1 GeV–1 TeV, ≈ 250 non-empty coarse voxels
per shower, each one flow row); the flow is untrained (sampling cost does not depend on the weights). CPU
figures use one torch thread per process (the pipeline's CPU actors get one CPU each); the pipeline runs on
a local Ray with 3 logical CPUs and no GPUs (up to 2 actors plus one CPU for the read and write tasks), so it
measures CPU actors even on a GPU node. The direct rate and both pipeline runs upsample the same showers
(the cost grows with the non-empty coarse voxels per shower, which is reported). Sizes: the full run gives the
1-worker pipeline run ≈ 1.5–2 min of sampling (8 files × 48 showers in batches of 16, so both actors stay busy
and actor start-up, a few seconds, is a few percent); `--quick` uses a 2-block flow and 32 showers (seconds;
its speed-up is not meaningful).
The speed-up cannot exceed the number of idle physical cores: on a shared 2-core machine expect < 2.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from caloray.io import write_showers
from caloray.models import save_model
from caloray.sim import SimConfig, simulate_batch
from caloray.superres import SuperResolutionFlow, coarse_energies, upsample_reference

Row = tuple[str, float, str]


def _showers(n: int) -> tuple[np.ndarray, np.ndarray]:
    config = SimConfig(geometry="ds2", particle="electron", n_showers=n, seed=1)
    energies, showers = simulate_batch(config, np.random.default_rng(1), n)
    return showers.astype(np.float32), np.asarray(energies, dtype=np.float32).reshape(-1)


def _model(quick: bool) -> SuperResolutionFlow:
    torch.manual_seed(0)
    kwargs = {"transforms": 2, "hidden_features": (32, 32)} if quick else {}  # full: thesis size 8 × (128, 128)
    return SuperResolutionFlow.for_geometry("ds2", "A", oracle=True, **kwargs).eval()


def _rate(model: SuperResolutionFlow, showers: np.ndarray, energies: np.ndarray, device: str, batch: int) -> float:
    x = torch.as_tensor(showers, device=device)
    e = torch.as_tensor(energies, device=device)
    upsample_reference(model, x[:batch], e[:batch])  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for lo in range(0, len(x), batch):
        upsample_reference(model, x[lo:lo + batch], e[lo:lo + batch])
    if device == "cuda":
        torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - start)


def _pipeline_seconds(model_path: Path, inputs: list[Path], out: Path, actors: int, batch: int) -> float:
    from caloray.superres.pipeline import upsample_files

    start = time.perf_counter()
    paths = upsample_files(model_path, inputs, out, batch_size=batch, seed=0, actors=actors)
    seconds = time.perf_counter() - start
    if not paths:
        raise RuntimeError("the upsampling pipeline wrote no shards")
    return seconds


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    # n_files files of per_file showers; the direct rate and both pipeline runs upsample the same showers
    n_files, per_file, batch = (2, 16, 8) if args.quick else (8, 48, 16)
    n = n_files * per_file
    torch.set_num_threads(1)
    model = _model(args.quick)
    showers, energies = _showers(n)
    rows_per_shower = float((coarse_energies(torch.as_tensor(showers), model.grid) > 0).sum(1).float().mean())
    size = "2 × (32, 32) flow" if args.quick else "thesis-size flow"
    direct = _rate(model, showers, energies, "cpu", batch)
    rows: list[Row] = [("superres non-empty coarse voxels per shower (flow rows)", rows_per_shower, "rows"),
                       (f"superres upsample CPU ({size}, float32, 1 thread)", direct, "showers/s")]
    if torch.cuda.is_available():
        gpu = _model(args.quick).cuda()
        n_gpu = 256 if args.quick else 4096
        reps = -(-n_gpu // n)
        rows.append((f"superres upsample GPU ({size}, float32, batch 1024)",
                     _rate(gpu, np.tile(showers, (reps, 1))[:n_gpu], np.tile(energies, reps)[:n_gpu], "cuda", 1024),
                     "showers/s"))

    import ray

    started = not ray.is_initialized()
    if started:  # 3 logical CPUs: up to 2 actors plus one for the read/write tasks; no GPUs → CPU actors
        ray.init(num_cpus=3, num_gpus=0, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model_path = save_model(model, root / "sr.pt")
            inputs = [write_showers(root / f"in-{i}.h5", showers[i * per_file:(i + 1) * per_file],
                                    energies[i * per_file:(i + 1) * per_file], geometry="ds2")
                      for i in range(n_files)]
            _pipeline_seconds(model_path, inputs[:1], root / "warm", 1, batch)  # imports, file cache
            one = _pipeline_seconds(model_path, inputs, root / "one", 1, batch)
            two = _pipeline_seconds(model_path, inputs, root / "two", 2, batch)
    finally:
        if started:
            ray.shutdown()
    rows += [(f"superres pipeline 1 worker ({n} showers, {n_files} files)", n / one, "showers/s"),
             (f"superres pipeline 2 workers ({n} showers, {n_files} files)", n / two, "showers/s"),
             ("superres pipeline speed-up 1→2 workers", one / two, "x"),
             ("superres pipeline 1-worker rate / direct CPU rate", (n / one) / direct, "ratio"),
             ("logical CPUs of this machine", float(os.cpu_count() or 0), "CPUs")]
    for name, value, unit in rows:
        print(f"{name}: {value:.3g} {unit}")
    return rows


if __name__ == "__main__":
    main()
