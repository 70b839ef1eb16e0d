"""The thesis' three-phase One-Cycle schedule (Sec. 4.4.3): learning rate and an inverse cycle on Adam's β1.

Learning rate, stepped per batch (`step` counts optimizer steps, epochs × steps_per_epoch):

- warm-up, `warmup` steps: linear from `base_lr` (1e-5) to `max_lr` (8e-4);
- cool-down, `cooldown` steps: cosine from `max_lr` back to `base_lr`;
- annihilation, `annihilation` steps: linear from `base_lr` to `final_lr` (1e-6); afterwards `final_lr`.

β1: linear from `beta1_high` (0.95) to `beta1_low` (0.85) during the warm-up, then cosine back to `beta1_high`
over cool-down + annihilation (the thesis' 30 and 50 epochs for 30 / 46 / 4 epochs). The thesis fixes the
shape of the learning rate only; the β1 shapes (linear down, cosine up, mirroring the rate) are our choice.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler


def one_cycle_lr(
    step: float,
    warmup: int,
    cooldown: int,
    annihilation: int,
    base_lr: float = 1e-5,
    max_lr: float = 8e-4,
    final_lr: float = 1e-6,
) -> float:
    """Learning rate after `step` optimizer steps."""
    if step < warmup:
        return base_lr + (max_lr - base_lr) * step / warmup
    step -= warmup
    if step < cooldown:
        return base_lr + (max_lr - base_lr) * 0.5 * (1.0 + math.cos(math.pi * step / cooldown))
    step -= cooldown
    if step < annihilation:
        return base_lr + (final_lr - base_lr) * step / annihilation
    return final_lr


def one_cycle_beta1(
    step: float, warmup: int, recovery: int, beta1_high: float = 0.95, beta1_low: float = 0.85
) -> float:
    """Adam β1 after `step` steps: down linearly over `warmup` steps, back up (cosine) over `recovery` steps."""
    if step < warmup:
        return beta1_high + (beta1_low - beta1_high) * step / warmup
    step -= warmup
    if step < recovery:
        return beta1_high + (beta1_low - beta1_high) * 0.5 * (1.0 + math.cos(math.pi * step / recovery))
    return beta1_high


class SuperCaloOneCycle(LRScheduler):
    """Per-batch scheduler applying `one_cycle_lr` and `one_cycle_beta1` to every parameter group.

    Phase lengths are in epochs (defaults 30 / 46 / 4 as in the thesis) times `steps_per_epoch`. β1 is set
    only for optimizers with ``betas`` (Adam family). Call `step()` after every `optimizer.step()`.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        steps_per_epoch: int,
        warmup_epochs: int = 30,
        cooldown_epochs: int = 46,
        annihilation_epochs: int = 4,
        base_lr: float = 1e-5,
        max_lr: float = 8e-4,
        final_lr: float = 1e-6,
        beta1_high: float = 0.95,
        beta1_low: float = 0.85,
        last_epoch: int = -1,
    ) -> None:
        if steps_per_epoch < 1 or min(warmup_epochs, cooldown_epochs, annihilation_epochs) < 1:
            raise ValueError("steps_per_epoch and every phase length must be >= 1")
        self.warmup = warmup_epochs * steps_per_epoch
        self.cooldown = cooldown_epochs * steps_per_epoch
        self.annihilation = annihilation_epochs * steps_per_epoch
        self.lrs = (base_lr, max_lr, final_lr)
        self.betas = (beta1_high, beta1_low)
        super().__init__(optimizer, last_epoch)

    @property
    def total_steps(self) -> int:
        return self.warmup + self.cooldown + self.annihilation

    def get_lr(self) -> list[float]:
        step = max(self.last_epoch, 0)
        beta1 = one_cycle_beta1(step, self.warmup, self.cooldown + self.annihilation, *self.betas)
        for group in self.optimizer.param_groups:
            if "betas" in group:
                group["betas"] = (beta1, group["betas"][1])
        lr = one_cycle_lr(step, self.warmup, self.cooldown, self.annihilation, *self.lrs)
        return [lr for _ in self.optimizer.param_groups]
