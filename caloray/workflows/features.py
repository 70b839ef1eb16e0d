"""Workflow `features`: high-level features of shower files as Parquet shards
(`caloray.pipelines.features.compute_feature_files`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from caloray.errors import ConfigError
from caloray.workflows import Result


@dataclass
class Config:
    """inputs: HDF5 or ROOT shower files, folders, globs or fsspec URLs; geometry: built-in name or binning XML;
    root_layout: TREE[:ENERGIES[:SHOWERS]] of ROOT inputs (`caloray.io.RootLayout`)."""

    inputs: list[str]
    geometry: str
    out: str = "outputs/features"
    root_layout: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("features: inputs must name at least one shower file, folder or glob")


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Files, keys, shapes and the geometry's voxel count (with `check_values`, NaN/inf/negative energies),
    before Ray starts."""
    from caloray.geometry import get_geometry
    from caloray.io import RootLayout
    from caloray.io.checks import check_shower_inputs

    check_shower_inputs(config.inputs, geometry=get_geometry(config.geometry),
                        layout=RootLayout.parse(config.root_layout), check_values=check_values)


def run(config: Config) -> Result:
    """Compute the features into `config.out` (`features-*.parquet`)."""
    from caloray.geometry import get_geometry
    from caloray.io import RootLayout, expand_paths
    from caloray.pipelines.features import compute_feature_files

    paths = compute_feature_files(expand_paths(config.inputs), get_geometry(config.geometry), Path(config.out),
                                  RootLayout.parse(config.root_layout))
    return Result(out=Path(config.out), paths={"features": paths}, metrics={"n_files": float(len(paths))},
                  summary=f"wrote {len(paths)} feature shard(s) to {config.out}")
