"""ONNX Runtime vs torch: showers/s of the exported shower-vae sampling graph (ECAL+HCAL, 1008 voxels) on the
CPU with one thread each, on the same inputs (incident energies and noise), side by side in one process.

The torch figure runs the same graph module that was exported (`SamplingGraph`, float32); the ONNX figure runs
`sample.onnx` written by `caloray.export.export_onnx` in an ONNX Runtime session (CPU provider, 1 intra-op
thread). Untrained weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from caloray.export import export_onnx, graph_specs
from caloray.geometry import get_geometry
from caloray.models import ShowerVAE

Row = tuple[str, float, str]


def _inputs(model: ShowerVAE, n: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    energies = torch.exp(torch.empty(n).uniform_(np.log(1e3), np.log(1e5), generator=generator))
    return {"incident_energy_mev": energies, "latent_noise": torch.randn(n, model.latent_dim, generator=generator)}


def _best_rate(run, n: int, repeats: int) -> float:
    run()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    import onnxruntime

    model = ShowerVAE(get_geometry("ecal-hcal").voxel_layer.tolist()).float().eval()
    n, repeats = (2000, 3) if args.quick else (20_000, 5)
    batch = 1000
    inputs = _inputs(model, n)
    (spec,) = [s for s in graph_specs(model)[0] if s.name == "sample"]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        export_onnx(model, tmp)
        export_seconds = time.perf_counter() - start
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(Path(tmp) / "sample.onnx"), options,
                                               providers=["CPUExecutionProvider"])
        feeds = [{k: v[lo:lo + batch].numpy() for k, v in inputs.items()} for lo in range(0, n, batch)]

        def run_onnx() -> None:
            for feed in feeds:
                session.run(None, feed)

        def run_torch() -> None:
            with torch.no_grad():
                for lo in range(0, n, batch):
                    spec.module(*(v[lo:lo + batch] for v in inputs.values()))

        onnx_rate = _best_rate(run_onnx, n, repeats)
        torch_rate = _best_rate(run_torch, n, repeats)
    rows: list[Row] = [
        ("export shower-vae ECAL+HCAL → sample.onnx (dynamo exporter + ORT check)", export_seconds, "s"),
        (f"sample shower-vae ECAL+HCAL 1008 voxels, torch CPU 1 thread, batch {batch}", torch_rate, "showers/s"),
        (f"sample shower-vae ECAL+HCAL 1008 voxels, ONNX Runtime CPU 1 thread, batch {batch}", onnx_rate, "showers/s"),
        ("ONNX Runtime / torch", onnx_rate / torch_rate, "×"),
    ]
    for name, value, unit in rows:
        print(f"{name:80s} {value:12.4g} {unit}")
    return rows


if __name__ == "__main__":
    main()
