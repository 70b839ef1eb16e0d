"""Ray Job entrypoint: simulate shower datasets with `caloray.sim` into HDF5 shards.

    python jobs/simulate.py --config jobs/configs/simulate-ds2-electrons.yaml --out /mnt/caloray/sim

The config is either one `SimConfig` (its fields at the top level; shards go to OUT/) or a list of named
datasets (`datasets: [{name, sim: SimConfig}]`; dataset NAME goes to OUT/NAME/).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from _entry import finish, job_parser, run_script

from caloray.config import from_dict
from caloray.errors import ConfigError
from caloray.runtime import init_ray
from caloray.sim import SimConfig, simulate_to_files


@dataclass(frozen=True)
class SimDataset:
    """One named dataset of a multi-dataset job."""

    name: str
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass(frozen=True)
class SimulateJob:
    """Several datasets simulated by one job, each into its own sub-folder."""

    datasets: list[SimDataset] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [d.name for d in self.datasets]
        if not names:
            raise ConfigError("datasets: list at least one dataset")
        if len(set(names)) != len(names) or any(not n or "/" in n for n in names):
            raise ConfigError(f"datasets: names must be unique, non-empty folder names, got {names}")


def load_job(path: str | Path) -> SimulateJob | SimConfig:
    """Read a simulate job config: `SimulateJob` when it has a `datasets` key, else one `SimConfig`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    if isinstance(data, dict) and "datasets" in data:
        return from_dict(SimulateJob, data, where=str(path))
    return from_dict(SimConfig, data, where=str(path))


def run(job: SimulateJob | SimConfig, out: Path) -> dict[str, list[Path]]:
    """Simulate every dataset of `job` under `out`; returns the shard paths per dataset."""
    if isinstance(job, SimConfig):
        return {"": simulate_to_files(job, out)}
    return {d.name: simulate_to_files(d.sim, out / d.name) for d in job.datasets}


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__.splitlines()[0], out_help="output folder (default outputs/simulate)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    job = load_job(args.config)
    out = Path(args.out or "outputs/simulate")
    init_ray()
    shards = run(job, out)
    for name, paths in shards.items():
        print(f"{name or 'dataset'}: {len(paths)} shard(s) in {out / name}", flush=True)
    finish(out, job, stage="simulate", config_file=str(args.config),
           shards={name: [str(p) for p in paths] for name, paths in shards.items()})
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
