"""Workflow `superres`: upsample coarse(-grained) showers with a SuperResolutionFlow
(`caloray.superres.pipeline.upsample_files`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from caloray.errors import ConfigError
from caloray.geometry import get_geometry
from caloray.io.checks import check_shower_inputs
from caloray.workflows import Result


@dataclass
class Config:
    """Which SuperResolutionFlow upsamples which showers.

    model: registry `NAME[:VERSION]` or a checkpoint file. inputs: shower files, folders or globs (fine
    showers, coarse-grained internally, or coarse-only ones for the strict variant). choice: ds2 coarse grid
    "A" or "B", or (r, α, layer) group sizes. oracle: None accepts the model's variant, true/false insists on
    it. actors: None → one per GPU, else min(CPUs − 1, files). tracking_uri: unset → MLFLOW_TRACKING_URI.
    require_gpu: refuse to run on a Ray cluster without GPUs (GPU actors are used whenever there are GPUs).
    """

    model: str
    inputs: list[str]
    out: str = "outputs/superres"
    geometry: str = "ds2"
    choice: str | tuple[int, ...] = "A"
    oracle: bool | None = None
    batch_size: int = 256
    seed: int = 0
    actors: int | None = None
    tracking_uri: str | None = None
    require_gpu: bool = False

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("superres: inputs must name at least one shower file, folder or glob")
        if not isinstance(self.choice, str):
            self.choice = tuple(int(g) for g in self.choice)  # hashable: the grid and run identity use it


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Every input has the fine or the coarse voxel count of the grid, before Ray starts."""
    from caloray.superres.coarse import CoarseGrid

    grid = CoarseGrid.from_geometry(get_geometry(config.geometry), config.choice)
    check_shower_inputs(config.inputs, voxels=(grid.n_voxels, grid.n_coarse), check_values=check_values,
                        expected_by=f"super-resolution of {config.geometry} (fine or coarse grid {config.choice})")


def run(config: Config) -> Result:
    """Upsample into `config.out`; `energy_kept`: total upsampled energy / total input energy (the flow
    conserves every coarse voxel's energy, so it is 1 up to float rounding), summed over the per-unit energies
    the workers recorded (nan for units of a folder written before they were recorded)."""
    import ray

    from caloray.pipelines.shards import read_records
    from caloray.superres.pipeline import upsample_files

    if config.require_gpu and not ray.cluster_resources().get("GPU", 0):
        raise ConfigError("superres: require_gpu is set and the Ray cluster has no GPU")
    shards = upsample_files(config.model, config.inputs, config.out, geometry=config.geometry, choice=config.choice,
                            oracle=config.oracle, batch_size=config.batch_size, seed=config.seed, actors=config.actors,
                            tracking_uri=config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    records = read_records(Path(config.out).resolve())
    units = [records[p.name] for p in shards]
    n_showers = sum(r.rows for r in units)
    total_in, total_out = (sum(r.stats.get(key, float("nan")) for r in units)
                           for key in ("energy_in_mev", "energy_out_mev"))
    kept = total_out / total_in if total_in > 0 else float("nan")
    return Result(out=Path(config.out), paths={"shards": list(shards)},
                  metrics={"n_showers": float(n_showers), "n_shards": float(len(shards)), "energy_kept": kept},
                  summary=f"wrote {len(shards)} upsampled shard(s) to {config.out}: {n_showers} showers, "
                  f"energy kept {kept:.4f}")
