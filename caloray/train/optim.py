"""Optimizers and learning-rate schedules built from their config."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import ConstantLR, LRScheduler, MultiStepLR, OneCycleLR

from caloray.train.config import OptimizerConfig, ScheduleConfig


def build_optimizer(params: Iterable[torch.nn.Parameter], config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimizer named in `config` over `params`."""
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=0.9)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig, *, epochs: int, steps_per_epoch: int
) -> tuple[LRScheduler, bool]:
    """The schedule and whether it steps per batch (True, OneCycle) or per epoch (False)."""
    if config.kind == "onecycle":
        total = max(1, epochs * steps_per_epoch)
        return OneCycleLR(optimizer, max_lr=config.max_lr, total_steps=total), True
    if config.kind == "multistep":
        return MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.gamma), False
    return ConstantLR(optimizer, factor=1.0, total_iters=0), False


def steps_per_epoch(n_rows: int, num_workers: int, batch_size: int) -> int:
    """Optimizer steps per epoch on each worker: Ray Train shards rows equally (remainder dropped)."""
    per_worker = n_rows // num_workers
    return -(-per_worker // batch_size)
