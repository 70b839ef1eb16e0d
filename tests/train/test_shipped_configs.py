"""Every shipped training recipe (caloray/configs/train-*.yaml) loads and builds its model for its geometry."""

from __future__ import annotations

from pathlib import Path

import pytest

from caloray.geometry import get_geometry
from caloray.train import load_train_config
from caloray.train.build import default_model_builder, resolve_model_kwargs

CONFIGS = Path(__file__).resolve().parents[2] / "caloray" / "configs"
RECIPES = sorted(CONFIGS.glob("train-*.yaml"))
#: The distilled student needs its trained teacher checkpoint to be built (tests/models/test_models_distill.py).
NEEDS_CHECKPOINT = {"voxel-flow-student"}
DATASETS = ("ds1-photons", "ds1-pions", "ds2", "ecal-hcal")


def test_inn_recipes_exist_for_every_dataset_on_cpu_and_gpu() -> None:
    names = {p.name for p in RECIPES}
    for dataset in DATASETS:
        assert {f"train-inn-{dataset}-cpu.yaml", f"train-inn-{dataset}-gpu.yaml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_and_builds_its_model(path: Path) -> None:
    config = load_train_config(path)
    if config.model.kind in NEEDS_CHECKPOINT:
        pytest.skip(f"{config.model.kind} is built from a trained teacher checkpoint")
    model = default_model_builder(config.model.kind, resolve_model_kwargs(config))  # construct only, never run
    assert model.kind == config.model.kind
    if config.data.geometry is not None and hasattr(model, "n_voxels"):
        assert model.n_voxels == get_geometry(config.data.geometry).n_voxels


@pytest.mark.parametrize("dataset", DATASETS)
def test_gpu_recipe_has_the_thesis_inn_settings(dataset: str) -> None:
    config = load_train_config(CONFIGS / f"train-inn-{dataset}-gpu.yaml")
    kwargs = config.model.kwargs
    assert (kwargs["blocks"], kwargs["hidden_features"], kwargs["bins"]) == (12, [256, 256, 256], 10)
    assert (config.schedule.kind, config.schedule.max_lr, config.batch_size, config.epochs) == ("onecycle", 1e-4, 256,
                                                                                                 200)
    assert config.ensemble.use_gpu and config.data.geometry == dataset
