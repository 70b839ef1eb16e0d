"""Ray Data pipeline: shower files → high-level feature table (Parquet shards)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from caloray.features import compute_features
from caloray.geometry import Geometry
from caloray.io import RootLayout, read_showers, write_dataset


class _FeatureMap:
    """`map_batches` callable: a showers batch → its feature columns (per-layer ones as tensors)."""

    def __init__(self, geometry: Geometry) -> None:
        self.geometry = geometry

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return compute_features(batch["showers"], batch["incident_energies"], self.geometry)


def features_dataset(ds: ray.data.Dataset, geometry: Geometry, batch_size: int = 2048) -> ray.data.Dataset:
    """Lazily map a shower dataset to its high-level features."""
    return ds.map_batches(_FeatureMap(geometry), batch_size=batch_size, batch_format="numpy")


def compute_feature_files(inputs: list[Path | str] | Path | str, geometry: Geometry, out_dir: Path,
                          layout: RootLayout | None = None) -> list[Path]:
    """Read shower files (HDF5 or ROOT, local or URLs) with Ray, compute features, write `features-*.parquet`
    shards in order; `layout` maps ROOT branches onto the CaloChallenge keys."""
    ds = features_dataset(read_showers(inputs, geometry=geometry, layout=layout), geometry)
    return write_dataset(ds, out_dir, fmt="parquet", prefix="features", attrs={"geometry": geometry.name})


def read_feature_table(paths: list[Path]) -> dict[str, np.ndarray]:
    """Concatenate feature Parquet shards into numpy columns (per-layer columns as (N, L) arrays)."""
    table = pa.concat_tables([pq.read_table(p) for p in paths])
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        column = table[name].combine_chunks()
        values = column.to_numpy(zero_copy_only=False)
        out[name] = np.stack(values) if values.dtype == object else values
    return out
