"""`caloray superres-study`: the super-resolution thesis' evaluation (Ch. 3.4 and 4) on simulated ds2 electrons.

Steps: simulate ds2 electrons (a training set and held-out evaluation sets, different seeds); train the
*strict* and the *oracle* `SuperResolutionFlow` (Ray Train via `train_ensemble`, registered in MLflow);
upsample the held-out coarse showers with the Ray Data pipeline (`upsample_files`: the strict variant reads
coarse-only files, the oracle variant the held-out fine files, from which it takes the fine-layer energies
only); evaluate with the two-sample machinery (`validate_arrays`): reference = held-out fine showers,
candidate = upsampled showers, per feature map × statistic × batch size → observed statistic, p-value,
sigma and power, the thesis' Tables 4.6–4.7 with strict and oracle side by side.

Reference and candidate are *disjoint* by default (`disjoint: true`): the reference is one held-out sample
and the coarse inputs come from a second, independent held-out sample. With `disjoint: false` the reference
is the very sample whose coarse showers are upsampled (the thesis' setup); with few showers an alternative
replicate then often holds a shower and its own upsampled copy, which shrinks the statistic and inflates p.
Both variants are tested with the same seed, so they share the very same null replicates and their p-values
compare directly.

Classifier metric (per variant, `caloray.stats.classifier`): a DNN trained to separate the held-out fine showers
from the upsampled ones, on each of `classifier_features` (default: E_inc-normalized voxels and the
CaloChallenge high-level features); its test AUC ± bootstrap error and JSD are reported with strict and oracle
side by side (0.5 = indistinguishable). Empty `classifier_features` switches it off.

Coarse-level H0 acceptance (per variant): coarse-graining the upsampled showers must give back the input
coarse energies per coarse voxel up to the 15 keV output cut (`conservation_metrics`), and the coarse-level
two-sample tests between the input coarse showers and the re-aggregated upsampled ones must accept H0
(every calibrated p ≥ alpha / number of coarse tests, Bonferroni: the calibrated p-values are uniform under H0,
so without the correction some of many tests would reject by chance).

Feature maps: "voxels" (6480 fine voxels, float32 as stored), "coarse" (the chosen coarse grid),
"total-energy", "layer-energies" (45), "centroids" and "widths" (energy-weighted r, α, z moments, 3 each,
thesis Eq. 4.6–4.7), and any name of `caloray.features.maps.FEATURE_MAPS`. The kernel statistics (mmd, fgd,
fgd-inf) run only on feature maps with at most `kernel_max_dim` dimensions, as in the thesis.

Plot layers are 1-based as in the thesis (layers 1, 10, 20, 45 of ds2 are voxel layer indices 0, 9, 19, 44).
"""

from __future__ import annotations

import csv
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from caloray.config import to_dict
from caloray.errors import ConfigError
from caloray.features.highlevel import centroids_and_widths, layer_energies
from caloray.features.maps import FEATURE_MAPS, coarse_voxels
from caloray.geometry import Geometry, get_geometry
from caloray.stats.classifier import ClassifierConfig
from caloray.superres.coarse import CoarseGrid
from caloray.superres.transforms import THRESHOLD_MEV
from caloray.tables import format_table

VARIANTS = ("strict", "oracle")
#: Statistics too costly in high dimension (the thesis runs them on low-dimensional features only).
KERNEL_STATISTICS = ("mmd", "fgd", "fgd-inf")
#: Statistics that use the random slices (their n_slices is reported; the others show "-").
SLICED_STATISTICS = ("sks", "swd")
STUDY_FEATURES = ("voxels", "coarse", "centroids", "widths")


@dataclass
class FlowTraining:
    """Training of each variant's SuperResolutionFlow (one Ray Train member each).

    `batch_size` counts showers; every non-empty coarse voxel of a shower is one flow row (≈ 250 per ds2
    electron for choice A), so 32 showers make batches of several thousand rows. `schedule` "onecycle" is
    torch's OneCycleLR per batch up to `max_lr` (the thesis' three-phase one-cycle: 80 epochs, max 8e-4);
    "multistep" halves `lr` at `milestones`; "constant" keeps `lr`. `model_kwargs` go to SuperResolutionFlow
    (the grid and the variant are set by the study; `coarse_energy_max_mev` is fit on the training set
    unless given). Thesis size: transforms 8, hidden_features [128, 128], dtype float64.
    """

    epochs: int = 4
    batch_size: int = 32
    lr: float = 1e-4
    schedule: str = "onecycle"
    max_lr: float = 8e-4
    milestones: list[int] = field(default_factory=list)
    validation_fraction: float = 0.1
    model_kwargs: dict = field(default_factory=lambda: {"transforms": 4, "hidden_features": [64, 64]})


@dataclass
class SuperResStudyConfig:
    """The study; energies in GeV. Thesis scale: 100k training and 100k test showers, batch sizes up to 10k."""

    out: str = "outputs/superres-study"
    geometry: str = "ds2"
    choice: str = "A"
    particle: str = "electron"
    prior: str = "log-uniform"
    energy_min_gev: float = 1.0
    energy_max_gev: float = 1000.0
    n_train: int = 2000
    n_eval: int = 1000
    disjoint: bool = True
    seed: int = 11
    flow: FlowTraining = field(default_factory=FlowTraining)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    upsample_batch_size: int = 64
    features: list[str] = field(default_factory=lambda: ["voxels", "coarse", "total-energy", "layer-energies",
                                                         "centroids", "widths"])
    statistics: list[str] = field(default_factory=lambda: ["mean-ks", "sks", "swd", "mmd", "fgd"])
    kernel_max_dim: int = 6
    batch_sizes: list[int] = field(default_factory=lambda: [100, 250, 500])
    n_iter: int = 100
    n_slices: int = 100
    mode: str = "bootstrap"
    alpha: float = 0.05
    conservation_rtol: float = 1e-5
    plot_layers: list[int] = field(default_factory=lambda: [1, 10, 20, 45])
    write_replicates: bool = True
    classifier_features: list[str] = field(default_factory=lambda: ["voxels-normalized", "calochallenge"])
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)  # its seed is replaced by `seed`
    experiment: str = "caloray-superres-study"
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        from caloray.stats import STATISTICS

        if self.choice not in ("A", "B"):
            raise ConfigError(f"superres-study.choice must be 'A' or 'B', got {self.choice!r}")
        bad = [v for v in self.variants if v not in VARIANTS]
        if not self.variants or bad or len(set(self.variants)) != len(self.variants):
            raise ConfigError(f"superres-study.variants must be distinct names from {VARIANTS}, got {self.variants}")
        unknown = [f for f in self.features if f not in STUDY_FEATURES and f not in FEATURE_MAPS]
        if unknown:
            raise ConfigError(f"superres-study.features: unknown {unknown}; valid: "
                              f"{', '.join(dict.fromkeys([*STUDY_FEATURES, *FEATURE_MAPS]))}")
        unknown = [f for f in self.classifier_features if f not in STUDY_FEATURES and f not in FEATURE_MAPS]
        if unknown:
            raise ConfigError(f"superres-study.classifier_features: unknown {unknown}; valid: "
                              f"{', '.join(dict.fromkeys([*STUDY_FEATURES, *FEATURE_MAPS]))}")
        unknown = [s for s in self.statistics if s not in STATISTICS or s == "llr"]
        if unknown:
            raise ConfigError(f"superres-study.statistics: unknown {unknown}; valid: "
                              f"{', '.join(s for s in STATISTICS if s != 'llr')}")
        if not self.batch_sizes or min(self.batch_sizes) < 2:
            raise ConfigError(f"superres-study.batch_sizes must be ≥ 2, got {self.batch_sizes}")
        if min(self.n_train, self.n_eval) < 2:
            raise ConfigError("superres-study: n_train and n_eval must be ≥ 2")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"superres-study.alpha must be in (0, 1), got {self.alpha}")
        if min(self.n_iter, self.n_slices, self.upsample_batch_size) < 1:
            raise ConfigError("superres-study: n_iter, n_slices and upsample_batch_size must be ≥ 1")
        self._check_model_kwargs()

    def _check_model_kwargs(self) -> None:
        """Build the flow once from `flow.model_kwargs` (milliseconds), so a bad key or value fails here, before
        the simulation, rather than inside a Ray Train worker minutes later."""
        from caloray.superres.model import SuperResolutionFlow

        kwargs = dict(getattr(self.flow, "model_kwargs", None) or {})
        for key in ("fine_shape", "groups"):  # the study sets the grid itself
            kwargs.pop(key, None)
        try:
            SuperResolutionFlow.for_geometry(self.geometry, self.choice, **kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"superres-study.flow.model_kwargs: {exc}") from None

    def usable_batch_sizes(self) -> list[int]:
        """The configured batch sizes that fit the evaluation samples (≤ n_eval), ascending."""
        return sorted({int(b) for b in self.batch_sizes if b <= self.n_eval})


@dataclass
class SuperResStudyResult:
    """What `run_superres_study` returns: the test rows, the coarse-level rows and where things are."""

    rows: list[dict]
    coarse_rows: list[dict]
    out: Path
    upsampled: dict[str, list[Path]]
    inputs: dict[str, list[Path]]
    mlflow_run_id: str
    seconds: dict[str, float]
    classifier_rows: list[dict] = field(default_factory=list)


# ----- pure helpers ------------------------------------------------------------------------------------
def conservation_metrics(coarse_in: np.ndarray, coarse_up: np.ndarray, group_size: int,
                         threshold_mev: float = THRESHOLD_MEV, rtol: float = 1e-5) -> dict[str, float]:
    """How well coarse-graining the upsampled showers reproduces the input coarse energies (both (N, C) MeV).

    The output cut removes fine voxels below `threshold_mev`, so an upsampled coarse voxel may fall short of
    its input by up to group_size × threshold (and never exceed it). Per non-empty input coarse voxel the
    deviation *beyond the cut* is max(0, deficit − g·t, −deficit), deficit = E_in − E_up; a voxel is within
    tolerance when that is ≤ rtol · E_in (float32 rounding). Returns:
    n_coarse_voxels (non-empty inputs), frac_within_tol, max_rel_dev_beyond_cut, max_rel_dev (raw
    |deficit| / E_in, dominated by near-threshold voxels that the cut empties), max_deficit_mev,
    n_spurious (empty inputs that are not empty after upsampling), cut_energy_fraction (mean over showers of
    the energy fraction the cut removed).
    """
    e_in = np.asarray(coarse_in, dtype=np.float64)
    e_up = np.asarray(coarse_up, dtype=np.float64)
    if e_in.shape != e_up.shape:
        raise ValueError(f"coarse shapes differ: {e_in.shape} vs {e_up.shape}")
    filled = e_in > 0
    deficit = (e_in - e_up)[filled]
    ref = e_in[filled]
    beyond = np.maximum.reduce([np.zeros_like(deficit), deficit - group_size * threshold_mev, -deficit])
    totals_in, totals_up = e_in.sum(axis=1), e_up.sum(axis=1)
    has_energy = totals_in > 0
    cut_fraction = (totals_in - totals_up)[has_energy] / totals_in[has_energy]
    n = int(filled.sum())
    return {
        "n_coarse_voxels": n,
        "frac_within_tol": float(np.mean(beyond <= rtol * ref)) if n else float("nan"),
        "max_rel_dev_beyond_cut": float(np.max(beyond / ref)) if n else float("nan"),
        "max_rel_dev": float(np.max(np.abs(deficit) / ref)) if n else float("nan"),
        "max_deficit_mev": float(np.max(deficit)) if n else float("nan"),
        "n_spurious": int(np.count_nonzero(e_up[~filled] != 0)),
        "cut_energy_fraction": float(np.mean(cut_fraction)) if cut_fraction.size else float("nan"),
    }


def layer_energy_spread(reference_layers: np.ndarray, candidate_layers: np.ndarray) -> dict[str, float]:
    """Whether each fine layer's energy of the candidate (M, L) MeV stays within the reference's (N, L) MeV spread:
    per layer, the ratio of the mean layer energies (candidate / reference; layers empty in both count as 1) and
    whether |mean difference| ≤ the reference's standard deviation in that layer. Returns layer_ratio_min,
    layer_ratio_max, layers_within_spread (count) and all_layers_within_spread (1.0 or 0.0)."""
    ref = np.asarray(reference_layers, dtype=np.float64)
    cand = np.asarray(candidate_layers, dtype=np.float64)
    mean_ref, mean_cand, spread = ref.mean(axis=0), cand.mean(axis=0), ref.std(axis=0)
    both_empty = (mean_ref == 0) & (mean_cand == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(both_empty, 1.0, mean_cand / mean_ref)
    within = np.abs(mean_cand - mean_ref) <= spread
    return {"layer_ratio_min": float(ratio.min()), "layer_ratio_max": float(ratio.max()),
            "layers_within_spread": float(within.sum()), "all_layers_within_spread": float(within.all())}


def comparison_rows(rows: Sequence[Mapping[str, Any]], variants: Sequence[str]) -> list[dict]:
    """Thesis-style table with the variants side by side: one row per (feature, d, statistic, batch size,
    n_slices), columns `p[variant]` and `sigma[variant]` (blank where a variant lacks that test)."""
    table: dict[tuple, dict] = {}
    for r in rows:
        key = (r["feature"], r["d"], r["statistic"], r["batch_size"], r["n_slices"])
        entry = table.setdefault(key, {"feature": key[0], "d": key[1], "statistic": key[2], "batch_size": key[3],
                                       "n_slices": key[4], **{f"{c}[{v}]": "" for v in variants
                                                              for c in ("p", "sigma")}})
        entry[f"p[{r['variant']}]"] = r["p_value"]
        entry[f"sigma[{r['variant']}]"] = r["sigma"]
    return list(table.values())


def classifier_comparison(rows: Sequence[Mapping[str, Any]], variants: Sequence[str]) -> list[dict]:
    """Classifier metric with the variants side by side: one row per (feature, d), columns `auc[variant]` and
    `jsd[variant]` as "value ± error" (blank where a variant lacks that feature)."""
    table: dict[tuple, dict] = {}
    for r in rows:
        blank = {f"{c}[{v}]": "" for v in variants for c in ("auc", "jsd")}
        entry = table.setdefault((r["feature"], r["d"]), {"feature": r["feature"], "d": r["d"], **blank})
        entry[f"auc[{r['variant']}]"] = f"{r['auc']:.4f} ± {r['auc_err']:.4f}"
        entry[f"jsd[{r['variant']}]"] = f"{r['jsd']:.4f} ± {r['jsd_err']:.4f}"
    return list(table.values())


def study_features(showers: np.ndarray, incident_energies_mev: np.ndarray, geometry: Geometry,
                   names: Sequence[str], choice: str) -> dict[str, np.ndarray]:
    """Feature matrices (N, d) of one sample: the study's maps (see the module docstring), else FEATURE_MAPS."""
    out: dict[str, np.ndarray] = {}
    moments = None
    for name in names:
        if name == "voxels":
            out[name] = np.asarray(showers, dtype=np.float32)  # as stored: exact, and the fast KS path
        elif name == "coarse":
            out[name] = coarse_voxels(choice)(showers, incident_energies_mev, geometry)
        elif name in ("centroids", "widths"):
            moments = moments if moments is not None else centroids_and_widths(showers, geometry)
            prefix = "centroid_" if name == "centroids" else "width_"
            out[name] = np.stack([moments[k] for k in sorted(moments) if k.startswith(prefix)], axis=1)
        else:
            out[name] = np.asarray(FEATURE_MAPS[name](showers, incident_energies_mev, geometry), dtype=np.float64)
        out[name] = out[name].reshape(len(showers), -1)
    return out


def coarse_of(showers: np.ndarray, grid: CoarseGrid) -> np.ndarray:
    """Coarse voxel energies (N, n_coarse) MeV in float64."""
    return np.asarray(showers, dtype=np.float64)[:, grid.fine_of_coarse].sum(axis=-1)


# ----- steps ---------------------------------------------------------------------------------------------
def _read(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    from caloray.io import read_shower_file

    parts = [read_shower_file(p) for p in paths]
    return (np.concatenate([p["showers"] for p in parts]),
            np.concatenate([np.asarray(p["incident_energies"]).reshape(-1) for p in parts]))


def _simulate(config: SuperResStudyConfig, out: Path) -> dict[str, list[Path]]:
    from caloray.sim import SimConfig, simulate_to_files

    common = {"geometry": config.geometry, "particle": config.particle, "prior": config.prior,
              "energy_min_mev": config.energy_min_gev * 1e3, "energy_max_mev": config.energy_max_gev * 1e3}
    sizes = {"train": config.n_train, "eval-reference": config.n_eval}
    if config.disjoint:
        sizes["eval-input"] = config.n_eval
    sets = {}
    for i, (name, n) in enumerate(sizes.items()):
        sim = SimConfig(n_showers=n, seed=config.seed * 100 + i, **common)
        sets[name] = simulate_to_files(sim, out / "data" / name, progress=False)
    if not config.disjoint:
        sets["eval-input"] = sets["eval-reference"]
    return sets


def _train(config: SuperResStudyConfig, variant: str, grid: CoarseGrid, paths: list[Path], e_max: float,
           out: Path, tracking_uri: str) -> Any:
    from caloray.io import read_showers
    from caloray.train.config import (
        DataSpec,
        EnsembleConfig,
        ModelSpec,
        OptimizerConfig,
        ScheduleConfig,
        TrackingConfig,
        TrainConfig,
    )
    from caloray.train.ensemble import train_ensemble

    settings = config.flow
    kwargs = {"coarse_energy_max_mev": e_max, **settings.model_kwargs,
              "fine_shape": [grid.n_layers, grid.n_alpha, grid.n_r], "groups": list(grid.groups),
              "oracle": variant == "oracle"}
    train_config = TrainConfig(
        model=ModelSpec(kind="superres-flow", kwargs=kwargs),
        data=DataSpec(paths=[str(p) for p in paths], geometry=config.geometry,
                      validation_fraction=settings.validation_fraction, split_seed=config.seed),
        optimizer=OptimizerConfig(lr=settings.lr),
        schedule=ScheduleConfig(kind=settings.schedule, max_lr=settings.max_lr,
                                milestones=list(settings.milestones)),
        ensemble=EnsembleConfig(members=1),
        tracking=TrackingConfig(experiment=config.experiment, tracking_uri=tracking_uri,
                                registry_name=f"superres-study-{config.geometry}-{config.choice}-{variant}"),
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=config.seed * 10 + VARIANTS.index(variant),
        output_dir=str(out / "models" / variant),
    )
    return train_ensemble(train_config, read_showers(paths), resume=True)


def _write_coarse_inputs(showers: np.ndarray, energies: np.ndarray, grid: CoarseGrid, out: Path,
                         chunk: int = 5000) -> list[Path]:
    """Coarse-only input files (n_coarse per row, float32 MeV): what the strict variant sees of a shower."""
    from caloray.io import write_showers

    if out.exists():
        shutil.rmtree(out)
    return [write_showers(out / f"coarse-{k:05d}.h5", coarse_of(showers[lo:lo + chunk], grid).astype(np.float32),
                          energies[lo:lo + chunk], attrs={"coarse_grid": list(grid.groups)})
            for k, lo in enumerate(range(0, len(showers), chunk))]


def _evaluate(config: SuperResStudyConfig, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
              variant: str, batch_sizes: list[int], out_dir: Path | None) -> list[dict]:
    """Every (feature × statistic × batch size) test of one candidate against the reference → rows."""
    import ray

    from caloray.validate.report import validate_arrays

    backend = "ray" if ray.is_initialized() else "local"
    rows = []
    for name in reference:
        d = reference[name].shape[1]
        stats = [s for s in config.statistics if s not in KERNEL_STATISTICS or d <= config.kernel_max_dim]
        if not stats:
            continue
        sub = None if out_dir is None else out_dir / name
        table = validate_arrays({name: (reference[name], candidate[name])}, stats, batch_sizes, n_iter=config.n_iter,
                                n_slices=config.n_slices, seed=config.seed, mode=config.mode, backend=backend,
                                out_dir=sub)
        for r in table.to_pylist():
            rows.append({"variant": variant, "feature": r["feature"], "d": int(r["d"]), "statistic": r["statistic"],
                         "batch_size": int(r["batch_size"]),
                         "n_slices": int(r["n_slices"]) if r["statistic"] in SLICED_STATISTICS else "-",
                         "observed": r["observed"], "p_value": r["p_value"], "sigma": r["sigma"],
                         "power_05": r["power_05"], "power_01": r["power_01"]})
    return rows


def _classify(config: SuperResStudyConfig, reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray],
              variant: str, out_dir: Path | None) -> list[dict]:
    """Classifier metric of one candidate against the reference per classifier feature map → rows."""
    import dataclasses

    import ray

    from caloray.validate.classifier import run_classifier_grid

    backend = "ray" if ray.is_initialized() else "local"
    settings = dataclasses.replace(config.classifier, seed=config.seed)
    table = run_classifier_grid({name: (reference[name], candidate[name]) for name in reference}, settings,
                                backend=backend, out_dir=out_dir)
    return [{"variant": variant, **{k: r[k] for k in ("feature", "d", "auc", "auc_err", "jsd", "jsd_err", "n_test",
                                                      "best_epoch", "plot_path")}} for r in table.to_pylist()]


def run_superres_study(config: SuperResStudyConfig) -> SuperResStudyResult:
    """Run the study end to end; writes metrics.csv/.txt, coarse_level.csv, plots/, provenance.json, MLflow."""
    import ray

    from caloray.runtime import init_ray
    from caloray.superres.pipeline import upsample_files
    from caloray.superres.transforms import fit_coarse_energy_max
    from caloray.tracking.store import resolve_tracking_uri

    if not ray.is_initialized():
        init_ray()
    out = Path(config.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    geometry = get_geometry(config.geometry)
    grid = CoarseGrid.from_geometry(geometry, config.choice)
    if any(not 1 <= k <= geometry.n_layers for k in config.plot_layers):
        raise ConfigError(f"superres-study.plot_layers are 1-based and must lie in 1…{geometry.n_layers}, "
                          f"got {config.plot_layers}")
    batch_sizes = config.usable_batch_sizes()
    if not batch_sizes:
        raise ConfigError(f"superres-study: no batch size ≤ n_eval = {config.n_eval} in {config.batch_sizes}")
    tracking_uri, _ = resolve_tracking_uri(out, config.tracking_uri)
    seconds: dict[str, float] = {}
    t_start = t0 = time.perf_counter()

    print("== simulating training and held-out evaluation sets", flush=True)
    sets = _simulate(config, out)
    train_showers, _ = _read(sets["train"])
    e_max = float(fit_coarse_energy_max(coarse_of(train_showers, grid)))  # max + the 1 keV noise width
    del train_showers
    ref_showers, ref_energies = _read(sets["eval-reference"])
    in_showers, in_energies = _read(sets["eval-input"])
    coarse_in = coarse_of(in_showers, grid)
    inputs = {"oracle": sets["eval-input"]}
    if "strict" in config.variants:
        inputs["strict"] = _write_coarse_inputs(in_showers, in_energies, grid,
                                                out / "data" / f"eval-input-coarse-{config.choice}")
    seconds["simulate"] = time.perf_counter() - t0

    upsampled: dict[str, np.ndarray] = {}
    upsampled_paths: dict[str, list[Path]] = {}
    registered: dict[str, str] = {}
    for variant in config.variants:
        t0 = time.perf_counter()
        print(f"== training the {variant} SuperResolutionFlow", flush=True)
        trained = _train(config, variant, grid, sets["train"], e_max, out, tracking_uri)
        seconds[f"train.{variant}"] = time.perf_counter() - t0
        model_ref = (f"{trained.registered[0]}:{trained.registered[1]}" if trained.registered
                     else str(trained.members[0].model_path))
        registered[variant] = model_ref
        t0 = time.perf_counter()
        print(f"== upsampling {config.n_eval} held-out coarse showers ({variant}, model {model_ref})", flush=True)
        target = out / "upsampled" / variant
        if target.exists():
            shutil.rmtree(target)
        paths = upsample_files(model_ref, inputs[variant], target, geometry=config.geometry, choice=config.choice,
                               oracle=variant == "oracle", batch_size=config.upsample_batch_size, seed=config.seed,
                               tracking_uri=tracking_uri)
        showers, energies = _read(paths)
        if showers.shape != in_showers.shape or not np.allclose(energies, in_energies, rtol=1e-6):
            raise RuntimeError(f"{variant}: upsampled rows do not line up with the {len(in_showers)} input showers")
        upsampled[variant], upsampled_paths[variant] = showers, paths
        seconds[f"upsample.{variant}"] = time.perf_counter() - t0
        seconds[f"upsample.{variant}.showers_per_s"] = len(showers) / seconds[f"upsample.{variant}"]

    t0 = time.perf_counter()
    print("== two-sample tests", flush=True)
    tests = out / "tests" if config.write_replicates else None
    reference = study_features(ref_showers, ref_energies, geometry, config.features, config.choice)
    classifier_reference = study_features(ref_showers, ref_energies, geometry, config.classifier_features,
                                          config.choice)
    rows: list[dict] = []
    coarse_rows: list[dict] = []
    classifier_rows: list[dict] = []
    for variant in config.variants:
        candidate = study_features(upsampled[variant], in_energies, geometry, config.features, config.choice)
        sub = None if tests is None else tests / variant
        rows += _evaluate(config, reference, candidate, variant, batch_sizes, sub)
        if config.classifier_features:
            classifier_rows += _classify(config, classifier_reference,
                                         study_features(upsampled[variant], in_energies, geometry,
                                                        config.classifier_features, config.choice),
                                         variant, out / "plots" / "classifier" / variant)
        coarse_up = coarse_of(upsampled[variant], grid)
        metrics = conservation_metrics(coarse_in, coarse_up, grid.group_size, THRESHOLD_MEV, config.conservation_rtol)
        h0 = _evaluate(config, {"coarse-input": coarse_in}, {"coarse-input": coarse_up}, variant, batch_sizes,
                       None if sub is None else sub / "coarse-level")
        p_values = [r["p_value"] for r in h0]
        layers = [layer_energies(showers, geometry) for showers in (ref_showers, upsampled[variant])]
        coarse_rows.append({"variant": variant, **metrics, **layer_energy_spread(*layers),
                            "min_p_coarse": float(min(p_values)) if p_values else float("nan"),
                            "n_coarse_tests": len(p_values),
                            "coarse_h0_accepted": bool(p_values)
                            and all(p >= config.alpha / len(p_values) for p in p_values)})
        for r in h0:
            coarse_rows[-1][f"p[{r['statistic']},b{r['batch_size']}]"] = r["p_value"]
    seconds["evaluate"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    run_id = _report(config, out, rows, coarse_rows, geometry, ref_showers, upsampled, registered, seconds,
                     batch_sizes, tests, classifier_rows)
    return SuperResStudyResult(rows=rows, coarse_rows=coarse_rows, out=out, upsampled=upsampled_paths,
                               inputs={k: list(v) for k, v in inputs.items()}, mlflow_run_id=run_id,
                               seconds=seconds, classifier_rows=classifier_rows)


def _write_csv(path: Path, rows: list[dict]) -> Path:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _report(config: SuperResStudyConfig, out: Path, rows: list[dict], coarse_rows: list[dict], geometry: Geometry,
            reference: np.ndarray, upsampled: dict[str, np.ndarray], registered: dict[str, str],
            seconds: dict[str, float], batch_sizes: list[int], tests: Path | None,
            classifier_rows: list[dict]) -> str:
    from caloray.plots import superres as plots
    from caloray.provenance import write_provenance
    from caloray.tracking.report import log_report
    from caloray.validate import significance

    p_min = 1 / (config.n_iter + 1)
    design = (f"{config.mode} null, {config.n_iter} replicates (p ≥ {p_min:.2g}, sigma ≤ {significance(p_min):.2f}), "
              f"{config.n_slices} slices, reference {'disjoint from' if config.disjoint else 'identical to'} the "
              f"upsampled showers' source")
    sections = [
        format_table(comparison_rows(rows, config.variants),
                     title=f"super-resolution study ({config.geometry}, choice {config.choice}): p-value and "
                           f"sigma per feature × statistic × batch size; {design}"),
        format_table(coarse_rows, title=f"coarse-level H0: energy conservation per coarse voxel (15 keV cut, "
                                        f"rtol {config.conservation_rtol:g}) and input-vs-upsampled coarse tests "
                                        f"(accepted: every p > {config.alpha:g})"),
        format_table([{"step": k, "seconds": v} for k, v in seconds.items()], title="runtime [s]"),
    ]
    if classifier_rows:
        sections.insert(1, format_table(
            classifier_comparison(classifier_rows, config.variants),
            title="classifier metric, held-out fine vs upsampled showers: test AUC (0.5 = indistinguishable) and "
                  "JSD [bits], ± bootstrap std"))
    text = "\n\n".join(sections)
    print(text)
    (out / "metrics.txt").write_text(text + "\n")
    _write_csv(out / "metrics.csv", rows)
    _write_csv(out / "coarse_level.csv", coarse_rows)
    if classifier_rows:
        _write_csv(out / "classifier.csv", classifier_rows)

    samples = {"reference": reference, **upsampled}
    figures = [plots.plot_layer_distributions(samples, geometry, config.plot_layers,
                                              out / "plots" / "layer_distributions.png"),
               plots.plot_shower_shapes(samples, geometry, out / "plots" / "shower_shapes.png")]
    figures += [plots.plot_pvalue_heatmap(rows, v, out / "plots" / f"pvalues_{v}.png", config.alpha)
                for v in config.variants]
    provenance = write_provenance(out / "provenance.json", config, stage="superres-study", seconds=seconds,
                                  models=registered, batch_sizes=batch_sizes)

    metrics: dict[str, float] = {}
    for r in rows:
        key = f"{r['variant']}.{r['feature']}.{r['statistic']}.b{r['batch_size']}"
        metrics |= {f"{key}.p_value": r["p_value"], f"{key}.sigma": r["sigma"], f"{key}.power_05": r["power_05"]}
    for r in coarse_rows:
        for k, v in r.items():
            if k != "variant" and not k.startswith("p["):
                metrics[f"{r['variant']}.coarse_level.{k}"] = float(v)
    for r in classifier_rows:
        metrics |= {f"{r['variant']}.{r['feature']}.classifier.{k}": r[k] for k in ("auc", "auc_err", "jsd", "jsd_err")}
    metrics |= {f"seconds.{k}": v for k, v in seconds.items()}
    params = to_dict(config) | {f"model.{k}": v for k, v in registered.items()}
    artifacts = [out / "plots", out / "metrics.csv", out / "metrics.txt", out / "coarse_level.csv", provenance]
    if classifier_rows:
        artifacts.append(out / "classifier.csv")
    if tests is not None:
        artifacts.append(tests)
    _, run_id = log_report(out, config.experiment, "superres-study", params=params, metrics=metrics,
                           artifacts=artifacts, tracking_uri=config.tracking_uri)
    return run_id
