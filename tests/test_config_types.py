"""`caloray.config.from_dict` checks every value against its field's type hint; shipped configs all pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from caloray.config import from_dict, load_yaml
from caloray.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "caloray" / "configs"


@dataclass
class Inner:
    rate: float = 0.5
    tags: tuple[str, ...] = ()


@dataclass
class Outer:
    epochs: int = 1
    milestones: list[int] = field(default_factory=list)
    enabled: bool = True
    name: str = "x"
    uri: str | None = None
    mode: Literal["bootstrap", "permutation"] = "bootstrap"
    pair: tuple[int, float] = (1, 2.0)
    kwargs: dict[str, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def test_well_typed_values_are_converted():
    config = from_dict(Outer, {"epochs": 3, "milestones": [2, 4], "enabled": False, "uri": None, "mode": "permutation",
                               "pair": [5, 6], "kwargs": {"a": 1}, "inner": {"rate": 2, "tags": ["a", "b"]}})
    assert config.pair == (5, 6.0) and isinstance(config.pair[1], float)
    assert config.inner.rate == 2.0 and isinstance(config.inner.rate, float) and config.inner.tags == ("a", "b")
    assert config.kwargs == {"a": 1.0} and config.milestones == [2, 4] and config.mode == "permutation"
    assert from_dict(Inner, {"rate": "1e-3"}).rate == 1e-3  # PyYAML reads 1e-3 (no dot) as a string
    # what callers in Python pass: numpy scalars and paths
    config = from_dict(Outer, {"epochs": np.int64(4), "name": Path("/a/b"), "inner": {"rate": np.float32(0.25)}})
    assert (config.epochs, config.name, config.inner.rate) == (4, "/a/b", 0.25) and type(config.epochs) is int
    with pytest.raises(ConfigError, match=r"config\.epochs: expected an integer"):
        from_dict(Outer, {"epochs": np.bool_(True)})


@pytest.mark.parametrize(("data", "message"), [
    ({"epochs": True}, "cfg.yaml.epochs: expected an integer, got True (bool)"),
    ({"epochs": 2.5}, "cfg.yaml.epochs: expected an integer, got 2.5 (float)"),
    ({"milestones": "abc"}, "cfg.yaml.milestones: expected a list, got 'abc' (str)"),
    ({"milestones": [1, "abc"]}, "cfg.yaml.milestones[1]: expected an integer, got 'abc' (str)"),
    ({"enabled": "yes please"}, "cfg.yaml.enabled: expected true or false"),
    ({"enabled": 1}, "cfg.yaml.enabled: expected true or false, got 1 (int)"),
    ({"name": 3}, "cfg.yaml.name: expected a string, got 3 (int)"),
    ({"uri": 3}, "cfg.yaml.uri: expected a string, got 3 (int)"),
    ({"mode": "bootstrp"}, "cfg.yaml.mode: expected one of 'bootstrap', 'permutation', got 'bootstrp'"),
    ({"pair": [1, 2, 3]}, "cfg.yaml.pair: expected a list of 2 items, got 3"),
    ({"kwargs": {"a": "b"}}, "cfg.yaml.kwargs.a: expected a number, got 'b' (str)"),
    ({"inner": {"rate": False}}, "cfg.yaml.inner.rate: expected a number, got False (bool)"),
    ({"inner": {"tags": "a"}}, "cfg.yaml.inner.tags: expected a list"),
    ({"inner": 3}, "cfg.yaml.inner: expected a mapping for Inner, got int"),
])
def test_wrong_types_are_one_line_errors_naming_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        from_dict(Outer, data, where="cfg.yaml")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_issue_examples_fail_from_a_train_yaml(tmp_path):
    from caloray.train import load_train_config

    base = (CONFIGS / "train-flow1-demo.yaml").read_text()
    for line, key in (("epochs: true", "epochs"), ("schedule: {milestones: abc}", "schedule.milestones")):
        path = tmp_path / "bad.yaml"
        path.write_text(f"{base}\n{line}\n")
        with pytest.raises(ConfigError, match=rf"^{path}\.{key}: expected"):
            load_train_config(path)


def test_every_shipped_config_still_loads():
    from caloray.amplify import load_amplification_config
    from caloray.studies.calibration import CalibrationStudyConfig
    from caloray.studies.superres import SuperResStudyConfig
    from caloray.train import load_train_config
    from caloray.workflows import build_config

    loaders = {"amplification": load_amplification_config, "demo": lambda p: build_config("demo", p),
               "calibration-study": lambda p: load_yaml(CalibrationStudyConfig, p),
               "superres-study": lambda p: load_yaml(SuperResStudyConfig, p)}
    paths = sorted(CONFIGS.glob("*.yaml"))
    assert len(paths) >= 10
    for path in paths:
        loaders.get(path.stem, load_train_config)(path)
