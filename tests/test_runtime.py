"""caloray.runtime: the Ray workers caloray starts run at its chosen niceness, not Ray's default 15."""

from __future__ import annotations

import os

from caloray.runtime import WORKER_NICENESS, worker_niceness_env


def test_worker_niceness_reaches_ray_workers(ray_local):
    setting = int(os.environ["RAY_worker_niceness"])  # set by the fixture through worker_niceness_env

    def niceness() -> int:  # defined here so Ray ships it by value (the test module is not importable there)
        return os.nice(0)

    seen = ray_local.get([ray_local.remote(niceness).remote() for _ in range(4)])
    # a worker cannot be less nice than the process that started Ray (no privilege to lower it)
    assert seen == [max(setting, os.nice(0))] * 4
    assert max(seen) < 15  # Ray's own default, which loses a core to any other runnable process


def test_worker_niceness_env_keeps_a_user_setting(monkeypatch):
    monkeypatch.setenv("RAY_worker_niceness", "7")
    worker_niceness_env()
    assert os.environ["RAY_worker_niceness"] == "7"
    monkeypatch.delenv("RAY_worker_niceness")
    worker_niceness_env()
    assert os.environ["RAY_worker_niceness"] == str(WORKER_NICENESS)
