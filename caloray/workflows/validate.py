"""Workflow `validate`: shower files → feature maps (Ray Data) → test grid (Ray) → table, plots, MLflow.

`validate_files` reads reference and candidate shower files, applies the named feature maps in `map_batches`,
and runs every (feature map × statistic) test with null replicates spread over the cluster
(`caloray.validate.report.validate_arrays`, the notebook entry: feature matrices in, tidy table out). The
statistic "classifier" is the CaloChallenge classifier metric (`caloray.validate.classifier`): one row per
feature map (it uses all rows, not batches), one Ray task each, gated by `max_auc` when that is set.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import ray

from caloray.errors import ConfigError
from caloray.features.maps import feature_map
from caloray.geometry import Geometry, get_geometry
from caloray.io import RootLayout, expand_paths, preserved_order, read_showers
from caloray.io.checks import check_shower_inputs
from caloray.plots.features import plot_feature_comparisons
from caloray.provenance import write_provenance
from caloray.stats.classifier import ClassifierConfig
from caloray.tables import format_table
from caloray.tracking.report import log_report
from caloray.validate.classifier import CLASSIFIER
from caloray.validate.report import (
    bonferroni_threshold,
    failed_gates,
    summary_rows,
    two_sample_rows,
    validate_arrays,
    verdict_line,
)
from caloray.workflows import Result


@dataclass
class ValidationConfig:
    """A validation run: which files, feature maps and statistics, and the experiment design.

    alpha: family-wise level of the PASS/FAIL line: every calibrated p-value must be ≥ alpha / number of tests
    (Bonferroni).
    classifier: settings of the "classifier" statistic (its seed is replaced by `seed`).
    max_auc: the classifier gate; a feature map whose test AUC exceeds it FAILs (None: reported, not gated).
    """

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
    alpha: float = 0.05
    backend: str = "ray"
    experiment: str = "caloray-validation"
    tracking_uri: str | None = None
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    max_auc: float | None = None
    root_layout: str | None = None  # ROOT inputs: TREE[:ENERGY_BRANCH[:SHOWERS_BRANCH]] (caloray.io.RootLayout)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"validate: alpha must be in (0, 1), got {self.alpha}")
        if not self.geometry:
            raise ConfigError("validate: geometry is required (both samples' geometry)")
        # names checked here, before any file is read or Ray starts (not as a ValueError deep in a replicate)
        from caloray.features.maps import FEATURE_MAPS
        from caloray.stats.registry import STATISTICS

        for kind, names, valid in (("statistics", self.statistics, [*STATISTICS, CLASSIFIER]),
                                   ("features", self.features, list(FEATURE_MAPS))):
            unknown = [name for name in names if name not in valid]
            if unknown:
                raise ConfigError(f"validate: unknown {kind} {', '.join(map(repr, unknown))}; "
                                  f"valid: {', '.join(valid)}")


class _FeatureBatch:
    """`map_batches` callable: showers → one flattened feature column per requested map."""

    def __init__(self, geometry: Geometry, names: list[str]) -> None:
        self.geometry = geometry
        self.names = names

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: feature_map(name)(batch["showers"], batch["incident_energies"], self.geometry)
                for name in self.names}


def file_features(paths: list[str], geometry: Geometry, names: list[str], max_rows: int,
                  layout: RootLayout | None = None) -> dict[str, np.ndarray]:
    """Feature matrices (N, d) of the first `max_rows` showers of `paths` in file order, computed in Ray Data
    tasks. The order is fixed (preserve_order), so replicate row indices, hence p-values, are reproducible."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    with preserved_order():
        ds = read_showers(paths, geometry=geometry, layout=layout).limit(max_rows)
        ds = ds.map_batches(_FeatureBatch(geometry, names), batch_size=2048, batch_format="numpy")
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for name in names:
                parts[name].append(np.asarray(batch[name], dtype=np.float64).reshape(len(batch[name]), -1))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def validate_files(config: ValidationConfig) -> pa.Table:
    """Run the configured validation; writes `results.parquet`, `results.csv`, `summary.txt`, plots, MLflow.

    Plots: `figures/<feature>.png` (reference vs candidate marginals with ratio panels) and
    `tests/…/<feature>__<statistic>.png` (null vs alternative), each with its histograms in a `.root` beside it.
    """
    geometry = get_geometry(config.geometry)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    layout = RootLayout.parse(config.root_layout)
    reference = file_features(config.reference, geometry, config.features, config.max_rows, layout)
    candidate = file_features(config.candidate, geometry, config.features, config.max_rows, layout)
    features = {name: (reference[name], candidate[name]) for name in config.features}
    plot_feature_comparisons(features, geometry, out / "figures")
    backend = config.backend if ray.is_initialized() else "local"
    table = validate_arrays(features, config.statistics, config.batch_sizes, n_iter=config.n_iter,
                            n_slices=config.n_slices, seed=config.seed, mode=config.mode, backend=backend,
                            out_dir=out / "tests", classifier=dataclasses.replace(config.classifier, seed=config.seed),
                            max_auc=config.max_auc)
    tests = two_sample_rows(table)
    threshold = bonferroni_threshold(config.alpha, tests.num_rows)
    title = (f"two-sample tests: calibrated test = held-out experiment vs {config.n_iter} permutations of its rows "
             f"(p_value, sigma); thesis summary with {config.mode} null, {config.n_iter} replicates (observed, "
             "median_p, power)")
    text = format_table(summary_rows(table, threshold), title=title)
    if tests.num_rows:
        text += "\n" + verdict_line(tests, config.alpha, config.n_iter)
    if CLASSIFIER in config.statistics:
        failed = failed_gates(table)
        gate = ("not gated (no max_auc)" if config.max_auc is None
                else "FAIL\n  " + "\n  ".join(failed) if failed else f"PASS (every test AUC ≤ {config.max_auc:g})")
        text += ("\nclassifier: test AUC of the raw output and JSD from the isotonic-calibrated output, ± bootstrap "
                 f"std; gate: {gate}")
    print(text)
    (out / "summary.txt").write_text(text + "\n")
    pq.write_table(table, out / "results.parquet")
    pacsv.write_csv(table, out / "results.csv")
    write_provenance(out / "provenance.json", config, stage="validate")

    metrics = {}
    for row in table.to_pylist():
        if row["statistic"] == CLASSIFIER:
            key = f"{row['feature']}.classifier"
            metrics |= {f"{key}.{k}": row[k] for k in ("auc", "auc_err", "jsd", "jsd_err")}
            if row.get("passed") is not None:
                metrics[f"{key}.passed"] = float(row["passed"])
            continue
        key = f"{row['feature']}.{row['statistic']}.b{row['batch_size']}"
        metrics |= {f"{key}.p_value": row["p_value"], f"{key}.sigma": row["sigma"], f"{key}.power_05": row["power_05"],
                    f"{key}.median_p": row["median_p"]}
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("reference", "candidate")}
    params |= {"n_reference_files": len(config.reference), "n_candidate_files": len(config.candidate)}
    log_report(out, config.experiment, "validate", params=params, metrics=metrics, tracking_uri=config.tracking_uri,
               inputs={"reference": config.reference, "evaluation": config.candidate}, geometry=config.geometry,
               layout=layout,
               artifacts=[out / "tests", out / "figures", out / "summary.txt", out / "results.csv",
                          out / "provenance.json"])
    return table


#: The workflow's one Config.
Config = ValidationConfig


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Both samples' files, keys, shapes and the geometry's voxel count, before Ray starts."""
    geometry, layout = get_geometry(config.geometry), RootLayout.parse(config.root_layout)
    for inputs in (config.reference, config.candidate):
        check_shower_inputs(inputs, geometry=geometry, layout=layout, check_values=check_values)


def run(config: Config) -> Result:
    """Expand `reference` and `candidate` (files, folders, globs), run the tests into `config.out`; `passed` is
    False when a configured classifier gate (`max_auc`) fails; `detail`: the results table."""
    for name in ("reference", "candidate"):
        if not getattr(config, name):
            raise ConfigError(f"validate: {name} must name at least one shower file, folder or glob")
    table = validate_files(dataclasses.replace(config, reference=[str(p) for p in expand_paths(config.reference)],
                                               candidate=[str(p) for p in expand_paths(config.candidate)]))
    column = table["p_value"].to_pylist() if "p_value" in table.column_names else []  # absent: classifier only
    p_values = [p for p in column if p is not None]
    metrics = {"n_tests": float(table.num_rows), "min_p_value": float(min(p_values)) if p_values else float("nan")}
    out = Path(config.out)
    return Result(out=out, metrics=metrics, paths={"summary": [out / "summary.txt"]},
                  passed=False if failed_gates(table) else None, summary=f"{table.num_rows} tests, results in {out}",
                  detail=table)
