"""Deterministic seeds: one per ensemble member, one per (member, epoch, worker) data shuffle."""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A 31-bit seed derived from integer keys with numpy's SeedSequence (stable across platforms)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] & 0x7FFFFFFF)


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member `member` (0-based) of an ensemble trained with `seed`."""
    return derive_seed(seed, member)


def shuffle_seed(member_seed_: int, epoch: int, rank: int) -> int:
    """The seed of the data shuffle of one worker in one epoch."""
    return derive_seed(member_seed_, epoch, rank)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global state third-party code draws from)
    torch.manual_seed(seed)


def rng_state() -> dict[str, object]:
    """The global RNG states as plain tensors/tuples, loadable with `torch.load(weights_only=True)`."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "numpy": (
            str(np_kind),
            torch.from_numpy(np_keys.astype(np.int64)),
            int(np_pos),
            int(np_has_gauss),
            float(np_gauss),
        ),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, object]) -> None:
    """Restore the states returned by `rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    legacy = (kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss)
    np.random.set_state(legacy)  # noqa: NPY002
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
