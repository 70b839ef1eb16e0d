"""Epoch metrics are reduced on a device the process group supports (NCCL: CUDA only; gloo: CPU)."""

from __future__ import annotations

import pytest
import torch

from caloray.train.loop import collective_device


@pytest.mark.parametrize(
    ("backend", "expected"),
    [("nccl", torch.device("cuda", 1)), ("gloo", torch.device("cpu")), ("cpu:gloo,cuda:nccl", torch.device("cpu"))],
)
def test_collective_device_follows_the_backend(monkeypatch, backend, expected):
    monkeypatch.setattr(torch.distributed, "get_backend", lambda group=None: backend)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)  # the GPU Ray Train gave this worker
    assert collective_device() == expected
