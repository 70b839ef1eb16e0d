"""The `superres` subcommand and the ds2 training config."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from caloray.cli import build_parser
from caloray.io import read_shower_file, write_showers
from caloray.models import save_model
from caloray.superres import SuperResolutionFlow
from caloray.train import load_train_config
from caloray.train.build import default_model_builder, resolve_model_kwargs

CONFIG = Path(__file__).resolve().parents[2] / "caloray" / "configs" / "superres-ds2-A.yaml"


def _parser() -> argparse.ArgumentParser:
    return build_parser()


def test_train_config_loads_and_builds():
    config = load_train_config(CONFIG)
    assert config.model.kind == "superres-flow" and config.schedule.kind == "onecycle"
    assert config.data.geometry == "ds2"
    model = default_model_builder(config.model.kind, resolve_model_kwargs(config))
    assert isinstance(model, SuperResolutionFlow)
    assert model.grid.groups == (1, 2, 5) and model.grid.n_coarse == 648 and model.oracle


def test_cli_parses_flags():
    args = _parser().parse_args(["superres", "--model", "sr:3", "--input", "a.h5", "b", "--out", "o",
                                 "--choice", "B", "--strict", "--seed", "7"])
    assert args.model == "sr:3" and args.inputs == ["a.h5", "b"] and args.choice == "B" and args.oracle is False
    assert args.seed == 7 and args.tracking_uri is None and callable(args.handler)
    with pytest.raises(SystemExit):
        _parser().parse_args(["superres", "--model", "m", "--input", "a", "--out", "o", "--choice", "C"])


def test_cli_runs(ray_local, tmp_path, capsys):
    torch.manual_seed(0)
    model = SuperResolutionFlow.for_geometry("ds2", "A", oracle=False, transforms=1, hidden_features=(8,))
    path = save_model(model, tmp_path / "strict.pt")
    rng = np.random.default_rng(0)
    showers = (rng.exponential(5.0, (3, 6480)) * (rng.random((3, 6480)) < 0.05)).astype(np.float32)
    write_showers(tmp_path / "in.h5", showers, np.full(3, 5e4, np.float32), geometry="ds2")
    args = _parser().parse_args(["superres", "--model", str(path), "--input", str(tmp_path / "in.h5"),
                                 "--out", str(tmp_path / "out"), "--strict"])
    assert args.handler(args) == 0
    shards = sorted((tmp_path / "out").glob("*.h5"))
    assert read_shower_file(shards[0])["showers"].shape == (3, 6480)
    assert "wrote 1 upsampled shard" in capsys.readouterr().out
