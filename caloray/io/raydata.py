"""Ray Data ⇄ shower files: a sharded HDF5/ROOT reader and atomic HDF5/Parquet shard writers.

The reader takes local paths and fsspec URLs, HDF5 and ROOT files (`caloray.io.root`), and splits each file
into row ranges, one read task per range, each yielding Arrow blocks of
at most `rows_per_block` rows (tensor column "showers", column "incident_energies", optional
"source_file"/"source_row" provenance and extra per-row datasets); no task ever loads a whole file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from ray.data import Datasink, Datasource, ReadTask
from ray.data.block import Block, BlockAccessor, BlockMetadata

from caloray.errors import ShowerFileError
from caloray.geometry import Geometry
from caloray.io.hdf5 import (
    ENERGY_KEY,
    SHOWERS_KEY,
    ShowerFileInfo,
    inspect_shower_file,
    read_shower_rows,
    write_showers,
)
from caloray.io.paths import Location, expand_paths, file_name
from caloray.io.root import RootLayout
from caloray.provenance import atomic_write

SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"


def _row_ranges(info: ShowerFileInfo, n_ranges: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, info.n_showers, n_ranges + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


class ShowerDatasource(Datasource):
    """Row-range sharded reader over one or many CaloChallenge HDF5 or ROOT files, local or at fsspec URLs.

    `layout` maps ROOT tree and branch names onto the CaloChallenge keys (ignored for HDF5 files).
    """

    def __init__(
        self,
        paths: str | Path | Iterable[str | Path],
        *,
        geometry: Geometry | None = None,
        rows_per_block: int = 4096,
        extra_keys: tuple[str, ...] = (),
        provenance: bool = False,
        layout: RootLayout | None = None,
    ) -> None:
        super().__init__()
        self.files = [inspect_shower_file(p, geometry, layout) for p in expand_paths(paths)]
        widths = {info.n_voxels for info in self.files}
        if len(widths) > 1:
            detail = ", ".join(f"{file_name(i.path)}: {i.n_voxels}" for i in self.files)
            raise ShowerFileError(f"input files disagree on voxels per shower ({detail})")
        for info in self.files:
            missing = [k for k in extra_keys if k not in info.per_row_keys]
            if missing:
                raise ShowerFileError(f"{info.path}: missing per-row dataset(s) {missing}")
        self.rows_per_block = rows_per_block
        self.extra_keys = extra_keys
        self.provenance = provenance
        self.layout = layout

    @property
    def n_showers(self) -> int:
        return sum(info.n_showers for info in self.files)

    def _row_bytes(self) -> int:
        info = self.files[0]
        return info.n_voxels * info.showers_dtype.itemsize + info.energy_dtype.itemsize

    def estimate_inmemory_data_size(self) -> int:
        return self.n_showers * self._row_bytes()

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        total = self.n_showers
        tasks: list[ReadTask] = []
        for info in self.files:
            # Share of the requested parallelism proportional to the file's rows (≥ 1 per file).
            n_ranges = max(1, min(info.n_showers, round(parallelism * info.n_showers / total)))
            for start, stop in _row_ranges(info, n_ranges):
                meta = BlockMetadata(num_rows=stop - start, size_bytes=(stop - start) * self._row_bytes(),
                                     exec_stats=None, input_files=(str(info.path),))
                tasks.append(ReadTask(self._reader(info.path, start, stop), meta,
                                      per_task_row_limit=per_task_row_limit))
        return tasks

    def _reader(self, path: Location, start: int, stop: int):
        rows_per_block, extra_keys, provenance = self.rows_per_block, self.extra_keys, self.provenance
        layout = self.layout

        def read() -> Iterable[Block]:
            for lo in range(start, stop, rows_per_block):
                hi = min(stop, lo + rows_per_block)
                batch = read_shower_rows(path, lo, hi, extra_keys=extra_keys, layout=layout)
                if provenance:
                    batch[SOURCE_FILE] = np.full(hi - lo, str(path))
                    batch[SOURCE_ROW] = np.arange(lo, hi, dtype=np.int64)
                yield BlockAccessor.batch_to_block(batch)

        return read


def read_showers(
    paths: str | Path | Iterable[str | Path],
    *,
    geometry: Geometry | None = None,
    rows_per_block: int = 4096,
    extra_keys: tuple[str, ...] = (),
    provenance: bool = False,
    override_num_blocks: int | None = None,
    concurrency: int | None = None,
    layout: RootLayout | None = None,
) -> ray.data.Dataset:
    """A Ray Dataset over shower files with columns "showers" (V,) and "incident_energies" (MeV).

    `paths`: local files, folders, globs or fsspec URLs of HDF5 or ROOT files (`layout`: the ROOT branch mapping).

    Files are validated up front (keys, ranks, voxel count vs `geometry`); values (NaN, inf,
    negative energies) are validated inside the read tasks, and errors name file, key and row.
    `concurrency` caps the read tasks running at once (None: as many as the cluster allows).
    """
    source = ShowerDatasource(paths, geometry=geometry, rows_per_block=rows_per_block,
                              extra_keys=extra_keys, provenance=provenance, layout=layout)
    return ray.data.read_datasource(source, override_num_blocks=override_num_blocks, concurrency=concurrency)


class ShardSink(Datasink):
    """Writes each write task's rows as one shard, atomically (temp name in place, then rename).

    HDF5 shards keep the CaloChallenge layout; other columns become extra datasets (HDF5) or
    columns (Parquet). Shard names carry the task index, so reading them back in name order
    reproduces the dataset's order when it was executed with `preserve_order`.
    """

    def __init__(self, out_dir: str | Path, fmt: Literal["hdf5", "parquet"], *, prefix: str = "shard",
                 geometry: str | None = None, attrs: dict[str, Any] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.prefix = prefix
        self.geometry = geometry
        self.attrs = attrs or {}

    def on_write_start(self, schema: Any = None) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, blocks: Iterable[Block], ctx: Any) -> list[str]:
        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return []
        table = pa.concat_tables(tables)
        suffix = "h5" if self.fmt == "hdf5" else "parquet"
        path = self.out_dir / f"{self.prefix}-{ctx.task_idx:05d}.{suffix}"
        if self.fmt == "hdf5":
            batch = BlockAccessor.for_block(table).to_batch_format("numpy")
            showers = batch.pop(SHOWERS_KEY)
            energies = batch.pop(ENERGY_KEY)
            extra = {k: v for k, v in batch.items() if k not in (SOURCE_FILE,)}
            write_showers(path, showers, energies, geometry=self.geometry, attrs=self.attrs, extra=extra)
        else:
            table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                                   **{k: str(v) for k, v in self.attrs.items()}})
            atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        return [str(path)]

    def on_write_complete(self, write_result: Any) -> None:
        self.written = sorted(p for batch in write_result.write_returns for p in batch)


def write_dataset(
    ds: ray.data.Dataset,
    out_dir: str | Path,
    *,
    fmt: Literal["hdf5", "parquet"] = "hdf5",
    rows_per_shard: int | None = None,
    prefix: str = "shard",
    geometry: str | None = None,
    attrs: dict[str, Any] | None = None,
) -> list[Path]:
    """Write a Ray Dataset as HDF5 or Parquet shards in order; returns the shard paths (sorted)."""
    with preserved_order(ds):
        if rows_per_shard is not None:
            n_rows = ds.count()
            ds = ds.repartition(max(1, math.ceil(n_rows / rows_per_shard)))
        sink = ShardSink(out_dir, fmt, prefix=prefix, geometry=geometry, attrs=attrs)
        ds.write_datasink(sink)
    return sorted(Path(p) for p in sink.written)


@contextmanager
def preserved_order(ds: ray.data.Dataset | None = None) -> Iterator[None]:
    """Ray Data executions inside keep the row order (`preserve_order`), restored after.

    A Dataset executes with the DataContext copied when it was created (read_* copies the current one),
    so a dataset built before this block must be passed as `ds` to have its own context switched too.
    """
    contexts = [ray.data.DataContext.get_current()]
    if ds is not None and ds.context is not contexts[0]:
        contexts.append(ds.context)
    previous = [ctx.execution_options.preserve_order for ctx in contexts]
    for ctx in contexts:
        ctx.execution_options.preserve_order = True
    try:
        yield
    finally:
        for ctx, value in zip(contexts, previous, strict=True):
            ctx.execution_options.preserve_order = value
