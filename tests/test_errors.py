"""What Ray 2.60 raises for a caloray error in a task, an actor, an actor's constructor and a Ray Data UDF, and
that `caloray.errors.user_error` recovers the original error from each (one line, as the local path gives)."""

from __future__ import annotations

import sys

import pytest
from ray import cloudpickle

from caloray.errors import CalorayError, ConfigError, ShowerFileError, is_resumable, one_line, user_error

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import a test module
MESSAGE = "/data/x.h5: 'showers' row 3 holds a non-finite value (NaN or inf)"


def _fail(*_):
    raise ShowerFileError(MESSAGE)


class _Failing:
    def __init__(self, fail_in_init: bool = False) -> None:
        if fail_in_init:
            _fail()

    def __call__(self, batch):
        _fail()

    def run(self):
        _fail()


def _recovered(exc: BaseException) -> CalorayError:
    error = user_error(exc)
    assert isinstance(error, ShowerFileError), type(exc)
    assert one_line(error) == MESSAGE
    return error


def test_local_errors_and_others():
    assert user_error(ConfigError("a.yaml: bad")) is not None
    try:
        try:
            _fail()
        except ShowerFileError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as exc:
        _recovered(exc)
    assert user_error(RuntimeError("a bug")) is None and user_error(ValueError("x")) is None
    assert one_line(ConfigError("a.yaml: bad YAML: line 1\n  column 2")) == "a.yaml: bad YAML: line 1 column 2"


def test_the_innermost_error_is_reported_and_a_crash_behind_one_keeps_the_outputs():
    try:
        try:
            _fail()
        except ShowerFileError as exc:
            raise ConfigError("generation stopped") from exc
    except ConfigError as exc:
        assert not is_resumable(_recovered(exc))  # bad input: the file's own error, the run's folder is removed
    try:
        try:
            raise RuntimeError("actor died")
        except RuntimeError as exc:
            raise ConfigError("generation stopped after 2 of 3 shards; rerun to resume") from exc
    except ConfigError as exc:
        error = user_error(exc)
        assert error is exc and is_resumable(error)  # a crash behind it: finished shards stay for the resume


def test_task_and_actor_errors(ray_local):
    ray = ray_local
    with pytest.raises(Exception) as info:
        ray.get(ray.remote(_fail).remote())
    _recovered(info.value)
    actor = ray.remote(_Failing).remote()
    with pytest.raises(Exception) as info:
        ray.get(actor.run.remote())
    _recovered(info.value)
    broken = ray.remote(_Failing).remote(True)  # dies in its constructor: only the text of the error survives
    with pytest.raises(Exception) as info:
        ray.get(broken.run.remote())
    _recovered(info.value)


@pytest.mark.parametrize("original", [True, False], ids=["raise-original", "user-code-exception"])
def test_ray_data_udf_errors(ray_local, original):
    ray = ray_local
    ctx = ray.data.DataContext.get_current()
    before = ctx.raise_original_map_exception
    ctx.raise_original_map_exception = original  # caloray.runtime.init_ray sets True; either way it is found
    try:
        # num_cpus=0: the failed pool's actor may outlive the test, and must not hold one of the session Ray's two
        # CPUs (a later 2-worker DDP test would wait for it forever).
        ds = ray.data.range(4).map_batches(_Failing, compute=ray.data.ActorPoolStrategy(size=1), batch_size=2,
                                           num_cpus=0)
        with pytest.raises(Exception) as info:
            ds.materialize()
        assert type(info.value).__name__.startswith("RayTaskError")
        _recovered(info.value)
    finally:
        ctx.raise_original_map_exception = before


def test_a_chain_ends_at_raise_from_none():
    """A config error re-raised `from None` with the file's name is the one reported, not the bare one it replaced."""
    try:
        try:
            raise ConfigError("classifier.dropout must be in [0, 1), got 1.5")
        except ConfigError as exc:
            raise ConfigError(f"a.yaml.classifier: {exc}") from None
    except ConfigError as exc:
        assert one_line(user_error(exc)) == "a.yaml.classifier: classifier.dropout must be in [0, 1), got 1.5"
