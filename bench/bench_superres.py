"""Super-resolution speed: upsampled ds2 showers/s (choice A, oracle, thesis-size flow) and the Ray pipeline's
1 → 2 actor speed-up.

Showers come from the built-in ds2 electron simulator; the flow is untrained (speed does not depend on the
weights). CPU figures use one torch thread per process; a GPU figure (float32) is added when CUDA is available.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from caloray.io import write_showers
from caloray.models import save_model
from caloray.sim import SimConfig, simulate_batch
from caloray.superres import SuperResolutionFlow, upsample_reference

Row = tuple[str, float, str]


def _showers(n: int) -> tuple[np.ndarray, np.ndarray]:
    config = SimConfig(geometry="ds2", particle="electron", n_showers=n, seed=1)
    energies, showers = simulate_batch(config, np.random.default_rng(1), n)
    return showers.astype(np.float32), np.asarray(energies, dtype=np.float32).reshape(-1)


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
    upsample_files(model_path, inputs, out, batch_size=batch, seed=0, actors=actors)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n, batch = (64, 32) if args.quick else (512, 128)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SuperResolutionFlow.for_geometry("ds2", "A", oracle=True).eval()
    showers, energies = _showers(n)
    rows: list[Row] = [("superres upsample CPU (float32, 1 thread)", _rate(model, showers, energies, "cpu", batch),
                        "showers/s")]
    if torch.cuda.is_available():
        gpu = SuperResolutionFlow.for_geometry("ds2", "A", oracle=True).cuda().eval()
        rows.append(("superres upsample GPU (float32)", _rate(gpu, showers, energies, "cuda", 4 * batch),
                     "showers/s"))

    import ray

    started = not ray.is_initialized()
    if started:  # 3 logical CPUs: up to 2 actors plus one for the read/write tasks
        ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model_path = save_model(model, root / "sr.pt")
            inputs = [write_showers(root / f"in-{i}.h5", part, e, geometry="ds2")
                      for i, (part, e) in enumerate(zip(np.array_split(showers, 4), np.array_split(energies, 4),
                                                        strict=True))]
            _pipeline_seconds(model_path, inputs[:1], root / "warm", 1, batch)
            one = _pipeline_seconds(model_path, inputs, root / "one", 1, batch)
            two = _pipeline_seconds(model_path, inputs, root / "two", 2, batch)
    finally:
        if started:
            ray.shutdown()
    rows += [("superres pipeline 1 actor", n / one, "showers/s"), ("superres pipeline 2 actors", n / two, "showers/s"),
             ("superres pipeline speed-up 1→2 actors", one / two, "x")]
    for name, value, unit in rows:
        print(f"{name}: {value:.3g} {unit}")
    return rows


if __name__ == "__main__":
    main()
