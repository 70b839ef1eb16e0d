"""Validation runs at the edge: shower files → feature maps (Ray Data) → test grid (Ray) → table, plots, MLflow.

`validate_arrays` is the notebook entry (feature matrices in, tidy table out); `validate_files` reads
reference and candidate shower files, applies the named feature maps in `map_batches`, and runs every
(feature map × statistic) test with null replicates spread over the cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import ray

from caloray.features.maps import feature_map
from caloray.geometry import Geometry, get_geometry
from caloray.io import preserved_order, read_showers
from caloray.provenance import write_provenance
from caloray.tables import format_table
from caloray.tracking.report import log_report
from caloray.validate import ExperimentDesign, run_test_grid

SUMMARY_COLUMNS = ("feature", "statistic", "d", "batch_size", "observed", "p_value", "sigma", "power_05", "power_01")


@dataclass
class ValidationConfig:
    """A validation run: which files, feature maps and statistics, and the experiment design."""

    reference: list[str]
    candidate: list[str]
    geometry: str
    out: str
    features: list[str] = field(default_factory=lambda: ["total-energy", "layer-energies", "shower-shape"])
    statistics: list[str] = field(default_factory=lambda: ["mean-ks", "sks", "swd", "mmd", "fgd"])
    batch_sizes: list[int] = field(default_factory=lambda: [1000])
    n_iter: int = 500
    n_slices: int = 100
    seed: int = 0
    mode: str = "bootstrap"
    max_rows: int = 200_000
    backend: str = "ray"
    experiment: str = "caloray-validation"
    tracking_uri: str | None = None


class _FeatureBatch:
    """`map_batches` callable: showers → one flattened feature column per requested map."""

    def __init__(self, geometry: Geometry, names: list[str]) -> None:
        self.geometry = geometry
        self.names = names

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: feature_map(name)(batch["showers"], batch["incident_energies"], self.geometry)
                for name in self.names}


def file_features(paths: list[str], geometry: Geometry, names: list[str], max_rows: int) -> dict[str, np.ndarray]:
    """Feature matrices (N, d) of the first `max_rows` showers of `paths` in file order, computed in Ray Data
    tasks. The order is fixed (preserve_order), so replicate row indices, hence p-values, are reproducible."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    with preserved_order():
        ds = read_showers(paths, geometry=geometry).limit(max_rows)
        ds = ds.map_batches(_FeatureBatch(geometry, names), batch_size=2048, batch_format="numpy")
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for name in names:
                parts[name].append(np.asarray(batch[name], dtype=np.float64).reshape(len(batch[name]), -1))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def validate_arrays(features: Mapping[str, tuple[np.ndarray, np.ndarray]], statistics: list[str],
                    batch_sizes: list[int], *, n_iter: int = 500, n_slices: int = 100, seed: int = 0,
                    mode: str = "bootstrap", backend: str = "local", out_dir: str | Path | None = None) -> pa.Table:
    """Every (feature × statistic × batch size) test on in-memory feature matrices; one tidy table."""
    tables = []
    for batch_size in batch_sizes:
        design = ExperimentDesign(batch_size=batch_size, n_iter=n_iter, n_slices=n_slices, seed=seed, mode=mode)
        sub = None if out_dir is None else Path(out_dir) / f"batch-{batch_size}"
        tables.append(run_test_grid(features, statistics, design, backend=backend, out_dir=sub))
    return pa.concat_tables(tables)


def summary_rows(table: pa.Table) -> list[dict]:
    """The columns people read first, as rows for `format_table`."""
    return [{k: row[k] for k in SUMMARY_COLUMNS} for row in table.to_pylist()]


def validate_files(config: ValidationConfig) -> pa.Table:
    """Run the configured validation; writes `results.parquet`, `results.csv`, `summary.txt`, plots, MLflow."""
    geometry = get_geometry(config.geometry)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    reference = file_features(config.reference, geometry, config.features, config.max_rows)
    candidate = file_features(config.candidate, geometry, config.features, config.max_rows)
    features = {name: (reference[name], candidate[name]) for name in config.features}
    backend = config.backend if ray.is_initialized() else "local"
    table = validate_arrays(features, config.statistics, config.batch_sizes, n_iter=config.n_iter,
                            n_slices=config.n_slices, seed=config.seed, mode=config.mode, backend=backend,
                            out_dir=out / "tests")
    text = format_table(summary_rows(table), title=f"two-sample tests ({config.mode} null, {config.n_iter} replicates)")
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    pq.write_table(table, out / "results.parquet")
    pacsv.write_csv(table, out / "results.csv")
    write_provenance(out / "provenance.json", config, stage="validate")

    metrics = {}
    for row in table.to_pylist():
        key = f"{row['feature']}.{row['statistic']}.b{row['batch_size']}"
        metrics |= {f"{key}.p_value": row["p_value"], f"{key}.sigma": row["sigma"], f"{key}.power_05": row["power_05"]}
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("reference", "candidate")}
    params |= {"n_reference_files": len(config.reference), "n_candidate_files": len(config.candidate)}
    log_report(out, config.experiment, "validate", params=params, metrics=metrics, tracking_uri=config.tracking_uri,
               inputs={"reference": config.reference, "evaluation": config.candidate}, geometry=config.geometry,
               artifacts=[out / "tests", out / "summary.txt", out / "results.csv", out / "provenance.json"])
    return table
