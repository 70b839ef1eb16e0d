"""Automatic validation of a generation: the model's showers against reference showers at the same energies.

The test is conditional by construction: `validate_n` incident energies are drawn from the reference (rows
disjoint from the reference sample when the reference is large enough), the model generates one shower per
energy with the run's validation seed, and the configured feature maps of both samples go through
`caloray.validate.report.validate_arrays` (bootstrap null). It therefore compares p(x | E) under the
reference's energy distribution, whatever energy spec the production used. The generation passes when every
(feature × statistic) p-value is ≥ alpha / number of tests (Bonferroni, family-wise error ≤ alpha).
The statistic "classifier" (the CaloChallenge classifier metric, `caloray.validate.classifier`) adds one row per
feature map with the test AUC ± its bootstrap error; it is no p-value test (not in the Bonferroni count) and, when
`max_auc` is set, the generation also fails when a map's AUC exceeds it. A Bayesian generator also gets its
weight-draw band drawn for every validation histogram (`caloray.generate.band`; not a gate).

The reference defaults to the model's training data: `data.paths` of the `train-config.yaml` stored with a
registered ensemble, or found next to a checkpoint file (up to three folders up).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import ray
import yaml

from caloray.errors import CalorayError, ConfigError
from caloray.features.maps import feature_map
from caloray.generate.band import BAND_DRAWS, draw_bands
from caloray.generate.models import GenerationError, ModelSource, ShowerSampler, iter_showers, load_sampler
from caloray.generate.pipeline import WorkerSpec
from caloray.geometry import BUILTIN, Geometry, get_geometry, read_binning_xml
from caloray.io import expand_paths, inspect_shower_file, read_shower_rows
from caloray.plots.features import plot_feature_comparisons
from caloray.runtime import worker_device
from caloray.stats.classifier import ClassifierConfig
from caloray.tables import format_table
from caloray.validate.classifier import CLASSIFIER
from caloray.validate.report import summary_rows, validate_arrays
from caloray.validate.summary import format_p

TRAIN_CONFIG_FILE = "train-config.yaml"
READ_BLOCK_ROWS = 4096
#: Per-test record: the calibrated test (test_batch rows per sample; p_value, sigma, p_floor: p at 1/(1 + n_iter))
#: that gates, and the thesis summary (observed = median alternative replicate, median_p) for reference.
SUMMARY_KEYS = ("feature", "statistic", "d", "test_batch", "p_value", "sigma", "p_floor", "observed", "median_p",
                "passed")
#: Per-feature-map record of the classifier metric (observed = auc; passed None when no max_auc gates it).
CLASSIFIER_KEYS = ("feature", "statistic", "d", "auc", "auc_err", "jsd", "jsd_err", "max_auc", "passed")


@dataclass
class ValidationOutcome:
    """Result of the automatic validation; `rows` has one dict per test (SUMMARY_KEYS)."""

    passed: bool
    alpha: float
    threshold: float
    rows: list[dict[str, Any]]
    reference_files: list[str]
    n_reference: int
    n_candidate: int
    folder: Path
    artifacts: list[Path] = field(default_factory=list)
    #: Bayesian generator: fraction of the plotted bins whose reference lies in the weight-draw band (band/).
    band_coverage: float | None = None

    @property
    def min_p_value(self) -> float:
        """The smallest calibrated p-value (nan when only the classifier ran)."""
        return min((row["p_value"] for row in self.rows if row["statistic"] != CLASSIFIER), default=float("nan"))

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: per-test calibrated p-value and sigma (and median_p, a summary), the smallest p-value,
        passed (1/0)."""
        metrics = {"validation.passed": float(self.passed), "validation.min_p_value": self.min_p_value,
                   "validation.threshold": self.threshold, "validation.n_reference": float(self.n_reference),
                   "validation.n_candidate": float(self.n_candidate)}
        if self.band_coverage is not None:
            metrics["validation.band_coverage"] = self.band_coverage
        for row in self.rows:
            key = f"validation.{row['feature']}.{row['statistic']}"
            if row["statistic"] == CLASSIFIER:
                metrics[f"{key}.auc"], metrics[f"{key}.auc_err"] = row["auc"], row["auc_err"]
                metrics[f"{key}.jsd"] = row["jsd"]
                continue
            metrics[f"{key}.p_value"], metrics[f"{key}.sigma"] = row["p_value"], row["sigma"]
            metrics[f"{key}.median_p"] = row["median_p"]
        return metrics

    def summary_lines(self) -> list[str]:
        """Each calibrated test's p-value against the threshold and the classifier AUC per feature map (when it
        ran), for a pipeline's closing summary (summary.txt beside the results has the full table)."""
        p_values = [f"{t['feature']} {t['statistic']} {format_p(t['p_value'], t['p_floor'])}"
                    for t in self.rows if t["statistic"] != CLASSIFIER]
        aucs = [f"{t['feature']} {t['auc']:.3f}" for t in self.rows if t["statistic"] == CLASSIFIER]
        return ([f"  validation p-values (pass: every p ≥ {self.threshold:.3g}): " + ", ".join(p_values)]
                if p_values else []) + (["  classifier AUC: " + ", ".join(aucs)] if aucs else [])

    def manifest_entry(self) -> dict[str, Any]:
        entry = {"passed": self.passed, "alpha": self.alpha, "threshold": self.threshold, "tests": self.rows,
                 "reference_files": self.reference_files, "n_reference": self.n_reference,
                 "n_candidate": self.n_candidate}
        return entry if self.band_coverage is None else {**entry, "band_coverage": self.band_coverage}


# ----- reference and geometry ------------------------------------------------------------------------------

def _train_config_paths(config_file: Path) -> list[str]:
    data = yaml.safe_load(config_file.read_text()) or {}
    paths = [str(p) for p in (data.get("data") or {}).get("paths") or []]
    resolved = []
    for text in paths:  # relative paths: as the training saw them (cwd), else next to the config file
        candidate = Path(text)
        if not candidate.is_absolute() and not candidate.exists() and (config_file.parent / candidate).exists():
            candidate = config_file.parent / candidate
        resolved.append(str(candidate))
    return resolved


def training_data_paths(model: ModelSource, tracking_uri: str | None = None) -> list[str]:
    """The shower files the model was trained on, as recorded with it ([] when nothing is recorded)."""
    if model.registry:
        from caloray.tracking.registry import registered_folder

        with registered_folder(model.name, model.version, tracking_uri=tracking_uri) as folder:
            config_file = folder / TRAIN_CONFIG_FILE
            return _train_config_paths(config_file) if config_file.is_file() else []
    for folder in list(Path(model.ref).parents)[:4]:
        if (folder / TRAIN_CONFIG_FILE).is_file():
            return _train_config_paths(folder / TRAIN_CONFIG_FILE)
    return []


def resolve_reference(reference: list[str] | None, model: ModelSource, tracking_uri: str | None) -> list[Path]:
    """Reference shower files: the configured ones, else the model's recorded training data."""
    if reference:
        return expand_paths(reference)
    recorded = training_data_paths(model, tracking_uri)
    if not recorded:
        raise ConfigError(f"the validation needs reference showers and model {model.ref!r} records no training "
                          "data: pass reference files (--reference FILES) or switch validation off (--validate-n 0)")
    try:
        return expand_paths(recorded)
    except CalorayError as exc:
        raise ConfigError(f"the training data recorded with model {model.ref!r} ({', '.join(recorded)}) is not "
                          f"readable here ({exc}); pass --reference FILES") from None


def resolve_geometry(name: str | None, reference: list[Path], voxel_layer: list[int]) -> Geometry | None:
    """The geometry: `name` (built-in or binning XML), else the reference files' `geometry` attribute, else the
    built-in geometry with the model's voxel → layer map; None when nothing identifies it."""
    if name:
        if name.endswith(".xml") or Path(name).is_file():
            geometry = read_binning_xml(name)
        else:
            geometry = get_geometry(name)
    else:
        geometry = None
        for path in reference:
            attr = inspect_shower_file(path).geometry
            if attr in BUILTIN:
                geometry = get_geometry(attr)
                break
        if geometry is None:
            geometry = next((get_geometry(g) for g in BUILTIN if get_geometry(g).voxel_layer.tolist() == voxel_layer),
                            None)
    if geometry is not None and geometry.n_voxels != len(voxel_layer):
        raise GenerationError(f"geometry {geometry.name!r} has {geometry.n_voxels} voxels, the model generates "
                              f"{len(voxel_layer)}")
    return geometry


# ----- samples ---------------------------------------------------------------------------------------------

def _features(names: list[str], showers: np.ndarray, energies: np.ndarray, geometry: Geometry) -> dict[str, np.ndarray]:
    return {n: np.asarray(feature_map(n)(showers, energies, geometry), dtype=np.float64).reshape(len(showers), -1)
            for n in names}


def reference_sample(paths: list[Path], geometry: Geometry, names: list[str], n_reference: int, n_conditions: int,
                     rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of up to `n_reference` random reference showers, and `n_conditions` incident energies (MeV).

    The energies come from other reference rows than the features when the files hold enough showers (else
    they are drawn with replacement from all rows). Files are read in blocks; showers are not kept.
    """
    sizes = np.array([inspect_shower_file(p, geometry).n_showers for p in paths])
    total = int(sizes.sum())
    if total >= n_conditions + 4:
        n_ref = min(n_reference, total - n_conditions)
        chosen = rng.choice(total, n_ref + n_conditions, replace=False)
        ref_rows, condition_rows = np.sort(chosen[:n_ref]), chosen[n_ref:]
    else:
        ref_rows, condition_rows = np.arange(total), rng.integers(0, total, n_conditions)
    needed = np.union1d(ref_rows, condition_rows)
    energies = np.empty(len(needed))
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for path, first, last in zip(paths, offsets[:-1], offsets[1:], strict=True):
        local = needed[(needed >= first) & (needed < last)] - first
        for block in np.unique(local // READ_BLOCK_ROWS):
            lo = int(block) * READ_BLOCK_ROWS
            rows = read_shower_rows(path, lo, min(lo + READ_BLOCK_ROWS, int(last - first)))
            picked = local[(local >= lo) & (local < lo + READ_BLOCK_ROWS)]
            global_rows = picked + first
            energies[np.searchsorted(needed, global_rows)] = rows["incident_energies"][picked - lo]
            keep = picked[np.isin(global_rows, ref_rows)] - lo
            if len(keep):
                for name, value in _features(names, rows["showers"][keep], rows["incident_energies"][keep],
                                             geometry).items():
                    parts[name].append(value)
    features = {n: np.concatenate(v) for n, v in parts.items()}
    return features, energies[np.searchsorted(needed, condition_rows)].astype(np.float32)


def candidate_features(sampler: ShowerSampler, energies: np.ndarray, torch_seed: int, geometry: Geometry,
                       names: list[str], batch_size: int, device: str = "cpu",
                       weight_draw_seed: int | None = None) -> dict[str, np.ndarray]:
    """Generate one shower per energy (MeV) and return their features (showers are not kept)."""
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for lo, hi, showers in iter_showers(sampler, energies, torch_seed, batch_size, device, weight_draw_seed):
        for name, value in _features(names, showers, energies[lo:hi], geometry).items():
            parts[name].append(value)
    return {n: np.concatenate(v) for n, v in parts.items()}


def _gpu_candidate_features(spec: WorkerSpec, energies: np.ndarray, torch_seed: int, geometry: Geometry,
                            names: list[str]) -> tuple[dict[str, np.ndarray], bool]:
    """(candidate features, whether the model is Bayesian) generated on this GPU worker."""
    device = worker_device(spec.use_gpu)
    sampler = load_sampler(spec.model, spec.layer_model, spec.tracking_uri).to(device)
    features = candidate_features(sampler, energies, torch_seed, geometry, names, spec.context.batch_size, device)
    return features, sampler.bayesian


# ----- the test --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ValidationSettings:
    """The validation part of a `GenerationConfig`."""

    n: int
    features: list[str]
    statistics: list[str]
    n_iter: int
    alpha: float
    seed: int
    reference_rows: int | None = None
    classifier: ClassifierConfig | None = None
    max_auc: float | None = None


def _summary_row(row: dict[str, Any], threshold: float) -> dict[str, Any]:
    """One table row → its summary record: a calibrated test passes when p ≥ threshold; a classifier row
    passes when its AUC ≤ max_auc (None: not gated)."""
    if row["statistic"] == CLASSIFIER:
        return {k: row[k] for k in CLASSIFIER_KEYS}
    return {**{k: row[k] for k in SUMMARY_KEYS if k != "passed"}, "passed": bool(row["p_value"] >= threshold)}


def _summary_text(table: pa.Table, rows: list[dict[str, Any]], settings: ValidationSettings, threshold: float,
                  passed: bool, n_ref: int, batch: int) -> str:
    """summary.txt: the verdict and the design, then the rows of `validate` (`summary_rows`: calibrated p-value
    and sigma, median_p and power, pass/FAIL at `threshold`; classifier rows with AUC ± err, JSD ± err, gate)."""
    tests = [row for row in rows if row["statistic"] != CLASSIFIER]
    classifier = len(tests) < len(rows)
    gate = "" if not classifier or settings.max_auc is None else f" and every classifier AUC ≤ {settings.max_auc:g}"
    title = (f"generation validation: {'PASSED' if passed else 'FAILED'} (every calibrated p ≥ {threshold:.3g} = "
             f"{settings.alpha:g}/{len(tests)}{gate}; {settings.n} generated vs {n_ref} reference showers, each test "
             f"{tests[0]['test_batch'] if tests else batch} held-out rows per sample against {settings.n_iter} "
             "permutations of them; median_p is the thesis summary, not a test"
             + ("; classifier: test AUC ± bootstrap error" if classifier else "") + ")")
    return format_table(summary_rows(table, threshold), title=title)


def run_validation(settings: ValidationSettings, spec: WorkerSpec, geometry: Geometry, reference: list[Path],
                   folder: Path, sampler: ShowerSampler | None = None) -> ValidationOutcome:
    """Compare `settings.n` generated showers with the reference; writes results.{csv,parquet}, summary.txt.

    The validation showers are generated on a GPU worker for GPU runs, else on this process with `sampler`
    (CPU; loaded here when not given), so CPU and GPU runs draw them on the same device type as the shards.
    """
    from caloray.generate.plan import validation_streams

    folder.mkdir(parents=True, exist_ok=True)
    rng, torch_seed = validation_streams(settings.seed)
    n_reference = settings.reference_rows or 2 * settings.n
    ref_features, energies = reference_sample(reference, geometry, settings.features, n_reference, settings.n, rng)
    if spec.use_gpu and ray.is_initialized():
        task = ray.remote(num_cpus=1, num_gpus=1)(_gpu_candidate_features)
        generated, bayesian = ray.get(task.remote(spec, energies, torch_seed, geometry, settings.features))
    else:
        sampler = sampler or load_sampler(spec.model, spec.layer_model, spec.tracking_uri)
        generated = candidate_features(sampler.to("cpu"), energies, torch_seed, geometry, settings.features,
                                       spec.context.batch_size)
        bayesian = sampler.bayesian
    band_coverage = None
    if bayesian:  # the weight-draw band of every validation histogram, drawn on CPU here (the model loaded once
        # more on this process only for a GPU run of a Bayesian generator)
        sampler = sampler or load_sampler(spec.model, spec.layer_model, spec.tracking_uri)
        band_coverage = draw_bands(sampler.to("cpu"), energies, ref_features, geometry, folder, settings.seed,
                                   spec.context.batch_size)
    n_ref = len(next(iter(ref_features.values())))
    batch = max(2, min(settings.n, n_ref // 2 if n_ref >= 4 else n_ref))
    features = {n: (ref_features[n], generated[n]) for n in settings.features}
    plot_feature_comparisons(features, geometry, folder / "figures", labels=("reference", "generated"))
    classifier = dataclasses.replace(settings.classifier or ClassifierConfig(), seed=settings.seed)
    table = validate_arrays(features, settings.statistics, [batch], n_iter=settings.n_iter, seed=settings.seed,
                            mode="bootstrap", backend="local", out_dir=folder / "tests", classifier=classifier,
                            max_auc=settings.max_auc)
    two_sample = [s for s in settings.statistics if s != CLASSIFIER]
    threshold = settings.alpha / max(1, len(settings.features) * len(two_sample))
    rows = [_summary_row(row, threshold) for row in table.to_pylist()]
    passed = all(row["passed"] is not False for row in rows)
    text = _summary_text(table, rows, settings, threshold, passed, n_ref, batch)
    if band_coverage is not None:
        text += (f"\n\nBayesian INN band ({BAND_DRAWS} weight draws, mean ± std ⊕ reference error): covers the "
                 f"reference in {band_coverage:.1%} of the plotted bins (band/coverage.csv, band/*.png)")
    (folder / "summary.txt").write_text(text + "\n")
    pq.write_table(table, folder / "results.parquet")
    pacsv.write_csv(table, folder / "results.csv")
    artifacts = [folder / "summary.txt", folder / "results.csv", folder / "tests", folder / "figures"]
    return ValidationOutcome(passed, settings.alpha, threshold, rows, [str(p) for p in reference], n_ref, settings.n,
                             folder, artifacts + ([folder / "band"] if band_coverage is not None else []),
                             band_coverage)
