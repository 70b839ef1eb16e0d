"""Workflow `score`: anomaly scores −log p(x | E_rec) of shower files and, with a signal sample, ROC/AUC/SIC
(`caloray.pipelines.score.score_files`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from caloray.errors import ConfigError
from caloray.pipelines.score import score_files
from caloray.workflows import Result
from caloray.workflows.calibrate import model_and_range, model_voxels


@dataclass
class Config:
    """model: as for `calibrate`; inputs: background (reference) shower files, folders or globs; signal: a
    labelled signal sample (optional). Energies in MeV; unset → the model's training range. seed: the
    dequantization noise."""

    model: str
    inputs: list[str]
    out: str = "outputs/score"
    signal: list[str] = field(default_factory=list)
    energy_min_mev: float | None = None
    energy_max_mev: float | None = None
    seed: int = 0
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise ConfigError("score: inputs must name at least one shower file, folder or glob")


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """Background and signal files against the model's voxel count, before Ray starts (as `calibrate`)."""
    from caloray.io.checks import check_shower_inputs

    voxels = model_voxels(config.model, config.tracking_uri)
    for inputs in (config.inputs, config.signal):
        if inputs:
            check_shower_inputs(inputs, voxels=voxels, check_values=check_values)


def run(config: Config) -> Result:
    """Score into `config.out` (background/, signal/, roc_sic.png, summary.json)."""
    reference, energy_range = model_and_range(config.model, config.tracking_uri,
                                              (config.energy_min_mev, config.energy_max_mev))
    out = Path(config.out)
    text = score_files(reference, energy_range, config.inputs, config.signal or None, out, seed=config.seed)
    metrics = {k: float(v) for k, v in json.loads((out / "summary.json").read_text()).items()}
    return Result(out=out, metrics=metrics, paths={"summary": [out / "summary.json"]}, summary=text)
