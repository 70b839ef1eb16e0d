"""The three-phase One-Cycle schedule: phase end points, shapes and the inverse β1 cycle on Adam."""

from __future__ import annotations

import pytest
import torch

from caloray.superres import SuperCaloOneCycle, one_cycle_beta1, one_cycle_lr


def test_learning_rate_phases():
    lr = [one_cycle_lr(s, warmup=30, cooldown=46, annihilation=4) for s in range(0, 90)]
    assert lr[0] == pytest.approx(1e-5) and lr[15] == pytest.approx((1e-5 + 8e-4) / 2)
    assert lr[30] == pytest.approx(8e-4) and max(lr) == pytest.approx(8e-4)
    assert lr[30 + 23] == pytest.approx((1e-5 + 8e-4) / 2)  # cosine half-way
    assert lr[76] == pytest.approx(1e-5) and lr[78] == pytest.approx((1e-5 + 1e-6) / 2)
    assert lr[80] == lr[89] == 1e-6


def test_beta1_inverse_cycle():
    beta = [one_cycle_beta1(s, warmup=30, recovery=50) for s in range(0, 90)]
    assert beta[0] == pytest.approx(0.95) and beta[30] == pytest.approx(0.85) and min(beta) == pytest.approx(0.85)
    assert beta[55] == pytest.approx(0.90) and beta[80] == beta[89] == pytest.approx(0.95)


def test_scheduler_drives_adam():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([parameter], lr=1.0)
    scheduler = SuperCaloOneCycle(optimizer, steps_per_epoch=2, warmup_epochs=3, cooldown_epochs=4,
                                  annihilation_epochs=1)
    seen = []
    for _ in range(scheduler.total_steps + 2):
        group = optimizer.param_groups[0]
        seen.append((group["lr"], group["betas"][0]))
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx((1e-5, 0.95))
    assert seen[6] == pytest.approx((8e-4, 0.85))
    assert seen[14][0] == pytest.approx(1e-5) and seen[14][1] < 0.95
    assert seen[16] == seen[-1] == pytest.approx((1e-6, 0.95))
    assert optimizer.param_groups[0]["betas"][1] == 0.999
