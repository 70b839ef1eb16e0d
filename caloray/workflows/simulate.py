"""Workflow `simulate`: parametrized showers → CaloChallenge HDF5 shards (`caloray.sim.simulate_to_files`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from caloray.errors import ConfigError
from caloray.sim import SimConfig, simulate_to_files
from caloray.workflows import Result


@dataclass(frozen=True)
class Dataset:
    """One named dataset of a multi-dataset run, simulated into OUT/NAME/."""

    name: str
    sim: SimConfig = field(default_factory=SimConfig)


@dataclass(frozen=True, kw_only=True)
class Config(SimConfig):
    """One dataset (the `SimConfig` fields, shards into `out`) or several named ones (`datasets`, each into
    OUT/NAME/; the top-level SimConfig fields are then unused and must stay at their defaults). Energies in MeV.
    A rerun into the same folder reuses every verified shard (the shared shard runner)."""

    out: str = "outputs/simulate"
    datasets: list[Dataset] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names) or any(not n or "/" in n for n in names):
            raise ConfigError(f"datasets: names must be unique, non-empty folder names, got {names}")
        if names and self.sim != SimConfig():
            raise ConfigError("datasets: with named datasets, put every SimConfig field under its dataset's `sim`")

    @property
    def sim(self) -> SimConfig:
        """The top-level dataset's SimConfig (this config without the workflow fields)."""
        return SimConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SimConfig)})


def run(config: Config, *, progress: bool = True) -> Result:
    """Simulate every dataset into its folder; `paths` maps dataset name ("" for the single one) → shards."""
    out = Path(config.out)
    sets = {d.name: (d.sim, out / d.name) for d in config.datasets} or {"": (config.sim, out)}
    paths = {name: simulate_to_files(sim, folder, progress=progress)
             for name, (sim, folder) in sets.items()}
    lines = [f"{name or 'dataset'}: {sim.n_showers} {sim.resolved_particle} showers ({sim.geometry}) in "
             f"{len(paths[name])} shard(s) in {folder}" for name, (sim, folder) in sets.items()]
    metrics = {f"{name + '.' if name else ''}n_showers": float(sim.n_showers) for name, (sim, _) in sets.items()}
    return Result(out=out, metrics=metrics, paths=paths, summary="\n".join(lines))
