"""A member interrupted after epoch 1 resumes from its checkpoint and ends bit-identical."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from caloray.config import from_dict, to_dict
from caloray.models import LayerEnergyFlow, read_checkpoint
from caloray.train import TrainConfig, TrainingError, train_ensemble


def crashing_builder(marker: Path, allowed_steps: int):
    """A model builder whose LayerEnergyFlow raises after `allowed_steps` training steps while `marker` exists.

    The class is defined inside this function so cloudpickle ships it by value to the Ray workers.
    """

    class CrashingFlow(LayerEnergyFlow):
        steps = 0

        def loss(self, batch, add_noise: bool = True):
            if self.training:
                self.steps += 1
                if marker.exists() and self.steps > allowed_steps:
                    raise RuntimeError("simulated worker crash")
            return super().loss(batch, add_noise=add_noise)

    def build(kind: str, kwargs: dict[str, Any]):
        assert kind == CrashingFlow.kind
        return CrashingFlow(**kwargs)

    return build


def final_weights(result) -> dict[str, torch.Tensor]:
    return read_checkpoint(result.members[0].model_path)["state_dict"]


def test_resume_after_interruption_matches_uninterrupted_run(make_dataset, flow_config, tmp_path):
    dataset = make_dataset(240)
    # 180 training rows, batch 40 → 5 steps per epoch; the crash comes at the first step of epoch 2.
    marker = tmp_path / "crash-now"
    marker.touch()
    builder = crashing_builder(marker, allowed_steps=5)

    interrupted = from_dict(TrainConfig, flow_config("interrupted"))
    with ThreadPoolExecutor(max_workers=1) as pool:  # the uninterrupted reference trains alongside (2 CPUs)
        reference_run = pool.submit(
            train_ensemble,
            from_dict(TrainConfig, flow_config("reference")),
            dataset,
            build_model=crashing_builder(tmp_path / "never-created", allowed_steps=5),
        )
        with pytest.raises(TrainingError, match=r"ensemble member 0 failed: .*simulated worker crash"):
            train_ensemble(interrupted, dataset, build_model=builder)
        member_dir = Path(interrupted.output_dir) / "ray" / "member-00"
        assert sorted(p.name for p in member_dir.glob("epoch-*")) == ["epoch-0001"]

        marker.unlink()
        resumed = train_ensemble(interrupted, dataset, resume=True, build_model=builder)
        reference = reference_run.result()

    history = resumed.members[0].history
    assert [row["epoch"] for row in history] == [1, 2]
    assert [row["lr"] for row in history] == pytest.approx([1e-3, 5e-4])  # multistep halving at epoch 1
    numbers = ("epoch", "train_loss", "val_loss", "lr")
    assert [[row[k] for k in numbers] for row in history] == [
        [row[k] for k in numbers] for row in reference.members[0].history
    ]
    assert resumed.members[0].seed == reference.members[0].seed
    ours, theirs = final_weights(resumed), final_weights(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name


def test_output_dir_of_earlier_run_needs_resume(make_dataset, flow_config):
    config = from_dict(TrainConfig, flow_config("taken"))
    Path(config.output_dir).mkdir(parents=True)
    (Path(config.output_dir) / "train-config.yaml").write_text("epochs: 2\n")
    with pytest.raises(Exception, match="holds an earlier training run; resume it"):
        train_ensemble(config, make_dataset(40))


def test_resume_refuses_a_changed_config(make_dataset, flow_config):
    config = from_dict(TrainConfig, flow_config("changed"))
    Path(config.output_dir).mkdir(parents=True)
    earlier = from_dict(TrainConfig, {**flow_config("changed"), "epochs": 5, "optimizer": {"lr": 0.01}})
    (Path(config.output_dir) / "train-config.yaml").write_text(yaml.safe_dump(to_dict(earlier)))
    with pytest.raises(Exception, match="cannot resume, the config changed in: optimizer, epochs"):
        train_ensemble(config, make_dataset(40), resume=True)
