"""The end-to-end pipeline's configuration: samples, ensembles and per-stage settings (YAML → dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from caloray.calibrate.mle import MLESettings
from caloray.config import load_yaml
from caloray.errors import ConfigError
from caloray.sim import SimConfig
from caloray.train import TrainConfig

#: Generator kinds the pipeline trains from scratch in its single generator stage: a Flow-II (chained to the
#: pipeline's Flow-I) or a complete-shower model. `voxel-flow-student` is not one: it distils an already trained
#: voxel-flow teacher (a checkpoint named in its kwargs), which this pipeline has no stage to produce first.
GENERATOR_KINDS = ("voxel-flow", "shower-vae", "shower-inn", "bayesian-shower-inn")


@dataclass
class PipelineData:
    """The simulated samples (SimConfig each). `reference`: held out, same geometry and particle as `train`;
    `calibration`: usually the fixed prior; `superres`: a regular cylindrical geometry (ds2), or none to skip
    super-resolution."""

    train: SimConfig
    reference: SimConfig
    calibration: SimConfig
    superres: SimConfig | None = None


@dataclass
class PipelineModels:
    """The trained ensembles (TrainConfig each; `data.paths`, `output_dir` and the tracking experiment and
    URI are set by the pipeline, `tracking.registry_name` must be set)."""

    flow1: TrainConfig
    generator: TrainConfig
    superres: TrainConfig | None = None


@dataclass
class GenerateStage:
    """`caloray.generate` settings (model, output and tracking come from the pipeline). Energies in MeV;
    None → log-uniform over the generator's training range. `validate_max_auc` gates the classifier metric
    ("classifier" in `validate_statistics`)."""

    n_showers: int = 1_000
    shard_size: int = 500
    energies: str | None = None
    seed: int = 0
    batch_size: int = 500
    actors: int | None = None
    validate_n: int = 500
    validate_n_iter: int = 500
    validate_alpha: float = 0.01
    validate_features: list[str] = field(default_factory=lambda: ["total-energy", "layer-energies"])
    validate_statistics: list[str] = field(default_factory=lambda: ["mean-ks", "swd"])
    validate_max_auc: float | None = None


@dataclass
class ValidateStage:
    """Two-sample tests of the generated showers against the reference sample (ValidationConfig fields)."""

    features: list[str] = field(default_factory=lambda: ["total-energy", "layer-energies"])
    statistics: list[str] = field(default_factory=lambda: ["mean-ks", "swd"])
    batch_sizes: list[int] = field(default_factory=lambda: [200])
    n_iter: int = 100
    n_slices: int = 50
    seed: int = 0
    mode: str = "bootstrap"
    max_rows: int = 200_000


@dataclass
class CalibrateStage:
    """MLE calibration of the calibration sample with the registered Flow-I; the bias table (one row per true
    energy, KDE mode with `n_bootstrap` bootstraps) when the sample has at most `max_table_energies` energies."""

    rows_per_unit: int = 4096
    batch_size: int = 1024
    seed: int = 0
    actors: int | None = None
    mle: MLESettings = field(default_factory=MLESettings)
    n_bootstrap: int = 20
    max_table_energies: int = 20


@dataclass
class SuperresStage:
    """Upsampling of the super-resolution sample with the registered SuperResolutionFlow."""

    choice: str | list[int] = "A"
    oracle: bool | None = None
    batch_size: int = 256
    seed: int = 0
    actors: int | None = None


@dataclass
class PipelineConfig:
    """One end-to-end run. `tracking_uri` None → MLFLOW_TRACKING_URI, else a local store in the output folder."""

    data: PipelineData
    train: PipelineModels
    experiment: str = "caloray-pipeline"
    tracking_uri: str | None = None
    generate: GenerateStage = field(default_factory=GenerateStage)
    validate: ValidateStage = field(default_factory=ValidateStage)
    calibrate: CalibrateStage = field(default_factory=CalibrateStage)
    superres: SuperresStage = field(default_factory=SuperresStage)

    def __post_init__(self) -> None:
        models = {"flow1": self.train.flow1, "generator": self.train.generator, "superres": self.train.superres}
        for name, train in models.items():
            if train is not None and not train.tracking.registry_name:
                raise ConfigError(f"train.{name}.tracking.registry_name: set it (later stages load the registered "
                                  "ensemble)")
        if self.train.flow1.model.kind != "layer-energy-flow":
            raise ConfigError(f"train.flow1.model.kind must be layer-energy-flow, got {self.train.flow1.model.kind!r}")
        if self.train.generator.model.kind not in GENERATOR_KINDS:
            raise ConfigError(f"train.generator.model.kind must be one of {GENERATOR_KINDS}, "
                              f"got {self.train.generator.model.kind!r}")
        if (self.data.superres is None) != (self.train.superres is None):
            raise ConfigError("data.superres and train.superres go together: set both or neither")
        if self.train.superres is not None and self.train.superres.model.kind != "superres-flow":
            kind = self.train.superres.model.kind
            raise ConfigError(f"train.superres.model.kind must be superres-flow, got {kind!r}")
        geometries = {self.data.train.geometry, self.data.reference.geometry, self.data.calibration.geometry}
        if len(geometries) != 1:
            raise ConfigError(f"data.train, data.reference and data.calibration must share one geometry, got "
                              f"{sorted(geometries)}")


def load_config(path: str | Path) -> PipelineConfig:
    return load_yaml(PipelineConfig, path)
