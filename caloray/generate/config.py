"""`GenerationConfig`: what to generate, where, and how the result is validated (YAML or flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.generate.energies import parse_energy_spec
from caloray.stats.classifier import ClassifierConfig

DEFAULT_SHARD_SIZE = 10_000


@dataclass
class GenerationConfig:
    """A production generation run. Energies in MeV.

    model: registry `NAME[:VERSION]` (VERSION pinned at the first run, newest if omitted) or a checkpoint file.
    layer_model: the Flow-I (layer-energy-flow) feeding a voxel-flow `model` (the CaloFlow chain); else unset.
    n_showers, shard_size: showers in total and per HDF5 shard (`shard-00000.h5`, ...).
    energies: incident-energy spec ("log-uniform:A-B", "uniform:A-B", "fixed:E1,E2,..."); None → log-uniform
        over the model's registered training range.
    seed: root of every shard's random streams (see `caloray.generate.plan`).
    out: output folder (shards, manifest.json, validation/, local MLflow store unless a URI is configured).
    batch_size: showers per model call inside a shard.
    use_gpu: one GPU per generation actor; None → when the Ray cluster has GPUs.
    actors: generation actors; None → one per GPU, or one per CPU (at most one per pending shard).
    max_restarts: restarts of a crashed actor (its shard is retried); 0 → fail fast and resume by rerunning.
    geometry: built-in geometry name or binning XML path; None → from the reference files or the model.
    validate_n: showers generated for the automatic validation (0 = off); reference: shower files/folders/globs
        it compares against (None → the model's recorded training data). The validation passes when every
        (feature × statistic) p-value is ≥ validate_alpha / number of tests (Bonferroni).
    validate_statistics may include "classifier" (the CaloChallenge classifier metric per feature map,
        `validate_classifier` settings, seed = `seed`): it is not a p-value test and not in the Bonferroni count;
        with `validate_max_auc` set the validation also FAILs when a feature map's test AUC exceeds it.
    validated_alias: registry alias set on a registered model (and layer model) whose validation passed; None → off.
    """

    model: str = ""
    layer_model: str | None = None
    n_showers: int = 10_000
    energies: str | None = None
    seed: int = 0
    shard_size: int = DEFAULT_SHARD_SIZE
    out: str = "outputs/generate"
    batch_size: int = 2_000
    tracking_uri: str | None = None
    experiment: str = "caloray-generate"
    use_gpu: bool | None = None
    actors: int | None = None
    max_restarts: int = 3
    geometry: str | None = None
    validate_n: int = 10_000
    reference: list[str] | None = None
    validate_features: list[str] = field(default_factory=lambda: ["total-energy", "layer-energies"])
    validate_statistics: list[str] = field(default_factory=lambda: ["mean-ks", "swd"])
    validate_n_iter: int = 500
    validate_alpha: float = 0.01
    validate_reference_rows: int | None = None
    validate_classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    validate_max_auc: float | None = None
    validated_alias: str | None = "validated"

    def __post_init__(self) -> None:
        checks = [
            (bool(self.model), "model is required: a registry NAME[:VERSION] or a checkpoint file"),
            (self.n_showers >= 1, f"n_showers must be ≥ 1, got {self.n_showers}"),
            (self.shard_size >= 1, f"shard_size must be ≥ 1, got {self.shard_size}"),
            (self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size}"),
            (self.seed >= 0, f"seed must be ≥ 0, got {self.seed}"),
            (self.actors is None or self.actors >= 1, f"actors must be ≥ 1, got {self.actors}"),
            (self.max_restarts >= 0, f"max_restarts must be ≥ 0, got {self.max_restarts}"),
            (self.validate_n == 0 or self.validate_n >= 2, f"validate_n must be 0 (off) or ≥ 2, got {self.validate_n}"),
            (0.0 < self.validate_alpha < 1.0, f"validate_alpha must be in (0, 1), got {self.validate_alpha}"),
            (self.validate_n_iter >= 1, f"validate_n_iter must be ≥ 1, got {self.validate_n_iter}"),
            (self.validate_max_auc is None or 0.5 <= self.validate_max_auc <= 1.0,
             f"validate_max_auc must be in [0.5, 1], got {self.validate_max_auc}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"generate: {message}")
        if isinstance(self.reference, str):
            self.reference = [self.reference]
        if self.energies is not None:
            parse_energy_spec(self.energies)
        if self.validate_n > 0:
            self._check_validation()

    def _check_validation(self) -> None:
        from caloray.features.maps import FEATURE_MAPS
        from caloray.stats import STATISTICS

        unknown = [f for f in self.validate_features if f not in FEATURE_MAPS]
        if unknown or not self.validate_features:
            raise ConfigError(f"generate: validate_features {unknown or '[]'} unknown; choose from "
                              f"{', '.join(FEATURE_MAPS)}")
        choices = [s for s in STATISTICS if s != "llr"] + ["classifier"]
        unknown = [s for s in self.validate_statistics if s not in choices]
        if unknown or not self.validate_statistics:
            raise ConfigError(f"generate: validate_statistics {unknown or '[]'} unknown; choose from "
                              f"{', '.join(choices)}")
        if self.validate_max_auc is not None and "classifier" not in self.validate_statistics:
            raise ConfigError("generate: validate_max_auc gates the classifier metric: add 'classifier' to "
                              "validate_statistics")
        n_tests = self.n_tests
        if n_tests == 0:
            return
        smallest_p = 1.0 / (self.validate_n_iter + 1)
        if smallest_p > self.validate_alpha / n_tests:
            need = int(n_tests / self.validate_alpha)
            raise ConfigError(f"generate: validate_n_iter={self.validate_n_iter} cannot reach the Bonferroni "
                              f"threshold {self.validate_alpha:g}/{n_tests}; use validate_n_iter ≥ {need}")

    @property
    def n_tests(self) -> int:
        """Number of (feature × statistic) two-sample tests of the validation (the classifier is not one)."""
        return len(self.validate_features) * len([s for s in self.validate_statistics if s != "classifier"])

    @property
    def out_dir(self) -> Path:
        return Path(self.out).expanduser().resolve()


def load_generation_config(path: str | Path) -> GenerationConfig:
    """Load a `GenerationConfig` from YAML (unknown keys name the closest valid one)."""
    return load_yaml(GenerationConfig, path)
