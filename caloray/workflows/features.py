"""Workflow `features`: high-level features of shower files (HDF5 or ROOT, local or URLs) as Parquet shards in
input order, on the shared shard runner (`caloray.pipelines.shards`, resumable).

Units are (input file, row range) of `rows_per_unit` rows; per-layer features are fixed-size list columns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from caloray.errors import ConfigError
from caloray.features import compute_features
from caloray.geometry import Geometry, get_geometry
from caloray.io import RootLayout, expand_paths, inspect_shower_file, read_shower_rows
from caloray.io.checks import check_shower_inputs
from caloray.pipelines.shards import Unit, UnitWorker, row_units, run_units
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


def feature_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """Feature columns (scalars (N,), per-layer (N, L)) as an Arrow table (per-layer: fixed-size lists)."""
    arrays = {}
    for name, values in columns.items():
        values = np.ascontiguousarray(values)
        arrays[name] = (pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
                        if values.ndim == 2 else pa.array(values))
    return pa.table(arrays)


class _FeatureUnit(UnitWorker):
    """Reads one (file, row range) unit and computes its features."""

    def __init__(self, geometry: Geometry, layout: RootLayout | None) -> None:
        self.geometry, self.layout = geometry, layout

    def compute(self, unit: Unit) -> pa.Table:
        data = read_shower_rows(unit.source, unit.key["start"], unit.key["stop"], layout=self.layout)
        table = feature_table(compute_features(data["showers"], data["incident_energies"], self.geometry))
        return table.replace_schema_metadata({"geometry": self.geometry.name})

    def write(self, path: Path, result: pa.Table) -> None:
        pq.write_table(result, path)


def compute_feature_files(inputs: list[Path | str] | Path | str, geometry: Geometry, out_dir: Path,
                          layout: RootLayout | None = None, *, rows_per_unit: int = 4096) -> list[Path]:
    """Compute the features of shower files into `features-*.parquet` shards in input order; `layout` maps ROOT
    branches onto the CaloChallenge keys."""
    files = [(path, inspect_shower_file(path, geometry, layout).n_showers) for path in expand_paths(inputs)]
    identity = {"workflow": "features", "geometry": geometry.name, "n_voxels": geometry.n_voxels,
                "layout": None if layout is None else dataclasses.asdict(layout), "rows_per_unit": rows_per_unit}
    units = row_units("features", ".parquet", files, rows_per_unit)
    records = run_units(out_dir, identity, units, _FeatureUnit(geometry, layout), use_gpu=False)
    return [Path(out_dir) / r.file for r in records]


def read_feature_table(paths: list[Path]) -> dict[str, np.ndarray]:
    """Concatenate feature Parquet shards into numpy columns (per-layer columns as (N, L) arrays)."""
    table = pa.concat_tables([pq.read_table(p) for p in paths])
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        values = table[name].combine_chunks().to_numpy(zero_copy_only=False)
        out[name] = np.stack(values) if values.dtype == object else values
    return out


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Files, keys, shapes and the geometry's voxel count (with `check_values`, NaN/inf/negative energies),
    before Ray starts."""
    check_shower_inputs(config.inputs, geometry=get_geometry(config.geometry),
                        layout=RootLayout.parse(config.root_layout), check_values=check_values)


def run(config: Config) -> Result:
    """Compute the features into `config.out` (`features-*.parquet`)."""
    paths = compute_feature_files(config.inputs, get_geometry(config.geometry), Path(config.out),
                                  RootLayout.parse(config.root_layout))
    return Result(out=Path(config.out), paths={"features": paths}, metrics={"n_files": float(len(paths))},
                  summary=f"wrote {len(paths)} feature shard(s) to {config.out}")
