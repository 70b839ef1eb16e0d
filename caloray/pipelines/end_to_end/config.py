"""The end-to-end pipeline's configuration: samples, ensembles and each stage's workflow Config (YAML → dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from caloray.config import wired
from caloray.errors import ConfigError
from caloray.generate.config import GenerationConfig
from caloray.pipelines.validate import ValidationConfig
from caloray.sim import SimConfig
from caloray.train import TrainConfig
from caloray.workflows.calibrate import Config as CalibrateConfig
from caloray.workflows.superres import Config as SuperresConfig

#: Generator kinds the pipeline trains from scratch in its single generator stage: a Flow-II (chained to the
#: pipeline's Flow-I) or a complete-shower model. `voxel-flow-student` is not one: it distils an already trained
#: voxel-flow teacher (a checkpoint named in its kwargs), which this pipeline has no stage to produce first.
GENERATOR_KINDS = ("voxel-flow", "shower-vae", "shower-inn", "bayesian-shower-inn")
#: Which model samples the generated showers' layer energies (`layer_energies`): the generator itself, or the
#: pipeline's Flow-I with the generator only spreading each layer's energy over its voxels (the CaloFlow split; a
#: voxel-flow generator always takes them from Flow-I).
LAYER_ENERGY_SOURCES = ("generator", "flow1")


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


#: What the pipeline wires into each stage's workflow Config itself (placeholders until it runs the stage).
PENDING = "<set by the pipeline>"
GENERATE_WIRING = {"model": PENDING, "layer_model": None, "out": PENDING, "tracking_uri": None,
                   "experiment": PENDING, "geometry": None, "reference": None}
VALIDATE_WIRING = {"reference": [], "candidate": [], "geometry": PENDING, "out": PENDING, "experiment": PENDING,
                   "tracking_uri": None}
CALIBRATE_WIRING = {"model": PENDING, "inputs": [PENDING], "out_dir": PENDING, "tracking_uri": None}
SUPERRES_WIRING = {"model": PENDING, "inputs": [PENDING], "out": PENDING, "geometry": PENDING, "tracking_uri": None}


@dataclass
class PipelineConfig:
    """One end-to-end run into `out`. `tracking_uri` None → MLFLOW_TRACKING_URI, else a local store in `out`;
    `gpu`: every training with one GPU per Ray Train worker. `layer_energies`: one of LAYER_ENERGY_SOURCES. The
    stages are the workflows' own Configs; the pipeline sets their models, inputs, outputs and tracking
    (`*_WIRING`), so those keys are not set here."""

    data: PipelineData
    train: PipelineModels
    out: str = "outputs/pipeline"
    experiment: str = "caloray-pipeline"
    tracking_uri: str | None = None
    gpu: bool = False
    layer_energies: str = "generator"
    generate: GenerationConfig = field(**wired(GenerationConfig, GENERATE_WIRING, n_showers=1_000, shard_size=500,
                                       batch_size=500, validate_n=500))
    validate: ValidationConfig = field(**wired(ValidationConfig, VALIDATE_WIRING, features=["total-energy",
                                                "layer-energies"], statistics=["mean-ks", "swd"], batch_sizes=[200],
                                                n_iter=100, n_slices=50))
    calibrate: CalibrateConfig = field(**wired(CalibrateConfig, CALIBRATE_WIRING))
    superres: SuperresConfig = field(**wired(SuperresConfig, SUPERRES_WIRING))

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
        if self.layer_energies not in LAYER_ENERGY_SOURCES:
            raise ConfigError(f"layer_energies must be one of {LAYER_ENERGY_SOURCES}, got {self.layer_energies!r}")
        if (self.data.superres is None) != (self.train.superres is None):
            raise ConfigError("data.superres and train.superres go together: set both or neither")
        if self.train.superres is not None and self.train.superres.model.kind != "superres-flow":
            kind = self.train.superres.model.kind
            raise ConfigError(f"train.superres.model.kind must be superres-flow, got {kind!r}")
        geometries = {self.data.train.geometry, self.data.reference.geometry, self.data.calibration.geometry}
        if len(geometries) != 1:
            raise ConfigError(f"data.train, data.reference and data.calibration must share one geometry, got "
                              f"{sorted(geometries)}")

