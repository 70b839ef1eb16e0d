"""Ray Job entrypoint: super-resolve coarse(-grained) showers with a SuperResolutionFlow (Ray Data actors).

    python jobs/superres.py --config jobs/configs/superres-demo.yaml --out /mnt/caloray/superres

Reads fine reference shower files (coarse-grained internally; the oracle variant takes their fine-layer
energies) or coarse-only files (strict variant only) and writes upsampled CaloChallenge HDF5 shards
(`caloray.superres.pipeline.upsample_files`); deterministic for given inputs, batch size and seed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ray
from _entry import finish, job_parser, run_script

from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.runtime import init_ray
from caloray.superres.pipeline import upsample_files


@dataclass
class SuperresJob:
    """Which SuperResolutionFlow upsamples which showers.

    model: registry `NAME[:VERSION]` or a checkpoint file. inputs: shower files, folders or globs.
    choice: ds2 coarse grid "A" or "B", or (r, α, layer) group sizes. oracle: None accepts the model's variant,
    true/false insists on it. actors: None → one per GPU, else min(CPUs − 1, files).
    """

    model: str
    inputs: list[str]
    out: str = "outputs/superres"
    geometry: str = "ds2"
    choice: str | list[int] = "A"
    oracle: bool | None = None
    batch_size: int = 256
    seed: int = 0
    actors: int | None = None
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("superres: inputs must name at least one shower file, folder or glob")
        if not isinstance(self.choice, str):
            self.choice = [int(g) for g in self.choice]


def run(job: SuperresJob) -> list[Path]:
    """Upsample `job.inputs` into `job.out`; returns the shard paths. Ray must be connected."""
    choice = job.choice if isinstance(job.choice, str) else tuple(job.choice)
    return upsample_files(job.model, job.inputs, job.out, geometry=job.geometry, choice=choice, oracle=job.oracle,
                          batch_size=job.batch_size, seed=job.seed, actors=job.actors,
                          tracking_uri=job.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(__doc__.splitlines()[0], out_help="output folder of the HDF5 shards (overrides `out`)")
    parser.add_argument("--gpu", action="store_true",
                        help="insist on GPU actors: fail when the cluster has no GPU (they are used whenever present)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    job = load_yaml(SuperresJob, args.config)
    if args.out:
        job.out = args.out
    init_ray()
    if args.gpu and not ray.cluster_resources().get("GPU", 0):
        raise ConfigError("--gpu: the Ray cluster has no GPU")
    shards = run(job)
    print(f"wrote {len(shards)} upsampled shard(s) to {job.out}", flush=True)
    finish(Path(job.out), job, stage="superres", config_file=str(args.config), shards=[str(s) for s in shards])
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
